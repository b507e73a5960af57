package notify

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
)

// Outbox is a Notifier that writes each message as a file in a directory
// instead of sending it. It is for operators without SMTP or SMS, who
// deliver the files by other means, and for development. It accepts both
// channels. It is safe for concurrent use.
//
// Each message becomes one file named "<unix-nanos>-<kind>-<random>.txt",
// or "<unix-nanos>-<kind>-<random>.<account>.txt" for a message about an
// account (Message.Account), with mode 0600, holding:
//
//	Channel: <channel>
//	To: <to>
//	Subject: <subject>
//
//	<body>
//
// Files are written atomically: a file with that name is complete. Temporary
// files while writing start with "." (".<account>." for a message about an
// account) and end in ".tmp". ForgetAccount deletes an account's files.
type Outbox struct {
	dir   string
	clock func() time.Time

	mu   sync.Mutex // serialises reads from rand, which need not be safe
	rand io.Reader
}

// OutboxConfig configures an Outbox.
type OutboxConfig struct {
	// Dir is the directory written to (required).
	Dir string
	// Clock names files; if nil, time.Now is used.
	Clock func() time.Time
	// Rand supplies the random part of each name (required).
	Rand io.Reader
}

// NewOutbox returns an Outbox writing to cfg.Dir, creating it with mode
// 0700 if it does not exist. An existing directory must be one that the
// group and others cannot access (mode 0700 or stricter), since the files
// hold personal data.
func NewOutbox(cfg OutboxConfig) (*Outbox, error) {
	dir, clock, rand := cfg.Dir, cfg.Clock, cfg.Rand
	if dir == "" {
		return nil, errors.New("notify: outbox: no directory")
	}
	if rand == nil {
		return nil, errors.New("notify: outbox: nil rand")
	}
	if clock == nil {
		clock = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("notify: outbox: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("notify: outbox: %w", err)
	}
	if !fi.IsDir() {
		return nil, errors.New("notify: outbox: not a directory")
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("notify: outbox: directory mode is %#o, want 0700", fi.Mode().Perm())
	}
	return &Outbox{dir: dir, clock: clock, rand: rand}, nil
}

// Send writes m to a new file in the outbox. It returns an *errs.Error
// with code errs.Invalid if m is malformed, and one with code
// errs.Unavailable if the file could not be written.
func (o *Outbox) Send(ctx context.Context, m Message) error {
	if err := m.validate(""); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return sendFailed("outbox", m, err)
	}
	var r [8]byte
	o.mu.Lock()
	_, err := io.ReadFull(o.rand, r[:])
	o.mu.Unlock()
	if err != nil {
		return sendFailed("outbox random", m, err)
	}
	name := fmt.Sprintf("%d-%s-%s%s.txt", o.clock().UnixNano(), m.Kind, hex.EncodeToString(r[:]), accountSuffix(m.Account))

	var b strings.Builder
	fmt.Fprintf(&b, "Channel: %s\nTo: %s\nSubject: %s\n\n%s", m.Channel, m.To, m.Subject, m.Body)
	if err := o.write(name, accountSuffix(m.Account), b.String()); err != nil {
		return sendFailed("outbox write", m, err)
	}
	return nil
}

// accountSuffix is what the names of an account's files end in before
// ".txt" (or start with, after ".", for temporary files).
func accountSuffix(account string) string {
	if account == "" {
		return ""
	}
	return "." + account
}

// ForgetAccount deletes every file of messages about account, complete or
// being written (a write then fails), and returns how many it deleted. It
// returns an error for an account that is not a valid Message.Account, or
// if the directory cannot be read or a file cannot be deleted.
func (o *Outbox) ForgetAccount(account string) (int, error) {
	if account == "" || !validAccount(account) {
		return 0, errs.E(errs.Invalid, "invalid account")
	}
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		return 0, fmt.Errorf("notify: outbox: %w", err)
	}
	suffix := accountSuffix(account)
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, suffix+".txt") && !(strings.HasPrefix(name, suffix+".") && strings.HasSuffix(name, ".tmp")) {
			continue
		}
		if err := os.Remove(filepath.Join(o.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("notify: outbox: %w", err)
		}
		n++
	}
	if n > 0 {
		syncDir(o.dir)
	}
	return n, nil
}

// write atomically creates dir/name with content and mode 0600; the
// temporary file's name starts with prefix+".".
func (o *Outbox) write(name, prefix, content string) (err error) {
	f, err := os.CreateTemp(o.dir, prefix+".*.tmp") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.WriteString(content); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	final := filepath.Join(o.dir, name)
	// The random part of the name makes replacing another file
	// vanishingly unlikely.
	if err = os.Rename(tmp, final); err != nil {
		return err
	}
	syncDir(o.dir)
	return nil
}

// syncDir syncs directory dir, so that created, renamed and deleted
// names are on disk; it is best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
