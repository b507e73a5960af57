package vault

import (
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Names in a keyring directory.
const (
	kekPrefix  = "kek-"
	kekSuffix  = ".key"
	deriveName = "derive.key"
)

// kekName returns the file name of KEK id in a keyring directory.
func kekName(id uint32) string { return kekPrefix + strconv.FormatUint(uint64(id), 10) + kekSuffix }

// parseKEKName returns the id a keyring file name stands for, and false
// for any other name (temporary files, the derivation key, strays).
func parseKEKName(name string) (uint32, bool) {
	digits, ok := strings.CutPrefix(name, kekPrefix)
	if !ok {
		return 0, false
	}
	if digits, ok = strings.CutSuffix(digits, kekSuffix); !ok || digits == "" || digits[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil || n == 0 {
		return 0, false
	}
	return uint32(n), true
}

// Config says where Open finds the keyring.
type Config struct {
	// Dir is the keyring directory: one file kek-N.key per KEK (N its id,
	// from 1), and derive.key, the derivation key of DeriveKey. Created
	// with mode 0700 if missing.
	Dir string
	// LegacyFile, if not empty, is the single KEK file of versions before
	// keyrings. If it exists it is KEK 0 (LegacyKEK), which version 1
	// wrapped keys and secrets need, until a rotation destroys it.
	LegacyFile string
	// Rand supplies new keys, data keys and nonces; nil means
	// crypto/rand.Reader.
	Rand io.Reader
	// Existing makes Open create nothing: a missing directory, a keyring
	// with no KEK (and no legacy file), or a missing derivation key is
	// an error satisfying errors.Is(err, fs.ErrNotExist). For tools that
	// check keys brought from elsewhere (admin restore).
	Existing bool
}

// keyring is a Vault's directory and what it last saw there.
type keyring struct {
	dir, legacy string
	// mu serialises looking at the directory; Vault.mu guards the keys.
	mu sync.Mutex
	// seen is the KEK files loaded, by id, with their size and mtime as
	// read, so a file replaced under the same name is noticed.
	seen map[uint32]fileStamp
	// looked is when follow last read the directory, in monotonic
	// nanoseconds since born.
	looked atomic.Int64
	born   time.Time
}

// followEvery bounds how often follow reads the directory: a KEK added
// elsewhere is used here at most this much later, far within the time a
// rotation waits before it destroys anything (package rekey).
const followEvery = 100 * time.Millisecond

type fileStamp struct {
	size  int64
	mtime time.Time
}

// Open returns a Vault for the keyring in cfg.Dir, creating the directory
// and its first KEK (kek-1.key) if it holds none and there is no legacy
// file, and the derivation key if missing. Every file is created with mode
// 0600 and appears atomically, never overwriting one another process
// created first.
//
// Open refuses, with an error naming the path and the fix, a keyring
// directory that group or others may access, and a key file that is not a
// regular file, that group or others may read, write or execute, or whose
// size is not KEKSize. Losing the keyring makes all sealed data
// unrecoverable: back it up apart from the database, and keep no copy of a
// KEK a rotation destroyed, or backups of the database stay readable.
func Open(cfg Config) (*Vault, error) {
	if cfg.Dir == "" {
		return nil, errors.New("vault: no keyring directory")
	}
	if cfg.Rand == nil {
		cfg.Rand = cryptorand.Reader
	}
	if cfg.Existing {
		if _, err := os.Stat(filepath.Join(cfg.Dir, deriveName)); err != nil {
			return nil, fmt.Errorf("vault: derivation key: %w", err)
		}
	} else if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("vault: create keyring directory: %w", err)
	}
	if err := checkDir(cfg.Dir); err != nil {
		return nil, err
	}
	v := &Vault{rand: cfg.Rand, keks: map[uint32]*kek{},
		ring: &keyring{dir: cfg.Dir, legacy: cfg.LegacyFile, seen: map[uint32]fileStamp{}, born: time.Now()}}
	if err := v.Refresh(); err != nil {
		return nil, err
	}
	if len(v.keks) == 0 && cfg.Existing {
		return nil, fmt.Errorf("vault: no key-encryption key in %s: %w", cfg.Dir, fs.ErrNotExist)
	}
	if len(v.keks) == 0 {
		// The first KEK is always number 1, so processes opening a new
		// keyring at once agree on it.
		raw, err := loadOrCreate(filepath.Join(cfg.Dir, kekName(1)), cfg.Rand)
		if err != nil {
			return nil, err
		}
		clear(raw)
		if err := v.Refresh(); err != nil {
			return nil, err
		}
	}
	derive, err := loadOrCreate(filepath.Join(cfg.Dir, deriveName), cfg.Rand)
	if err != nil {
		return nil, err
	}
	defer clear(derive)
	v.derive = newKEK(0, derive).prk
	return v, nil
}

// checkDir refuses a keyring directory others may access.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("vault: keyring directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("vault: keyring %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("vault: keyring directory %s has mode %#o, which lets group or others access it; "+
			"run chmod 700 %s (and check who may have read it)", dir, perm, dir)
	}
	return nil
}

// follow looks for KEKs another process added or destroyed. Errors leave
// the keyring as it was; Refresh returns them.
func (v *Vault) follow() {
	r := v.ring
	if r == nil {
		return
	}
	now := int64(time.Since(r.born)) + 1
	if last := r.looked.Load(); last != 0 && now-last < int64(followEvery) {
		return
	}
	r.looked.Store(now)
	_ = v.Refresh()
}

// Refresh reads the keyring directory again: KEKs added there are
// loaded, KEKs whose files are gone (destroyed by a rotation in another
// process) are dropped and their derived keys zeroed, and the newest KEK
// becomes the primary. Operations that depend on the keyring call it
// themselves; it is exported for a server that wants to let go of
// destroyed KEKs at once. It returns the first file it could not read,
// without dropping anything on a failed directory read. For a Vault made
// by New it does nothing.
func (v *Vault) Refresh() error {
	r := v.ring
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return fmt.Errorf("vault: read keyring directory: %w", err)
	}
	files := map[uint32]string{}
	for _, e := range entries {
		if id, ok := parseKEKName(e.Name()); ok {
			files[id] = filepath.Join(r.dir, e.Name())
		}
	}
	if r.legacy != "" {
		if _, err := os.Lstat(r.legacy); err == nil {
			files[LegacyKEK] = r.legacy
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("vault: legacy key file: %w", err)
		}
	}
	var firstErr error
	add := map[uint32]*kek{}
	stamps := map[uint32]fileStamp{}
	for id, path := range files {
		fi, err := os.Stat(path)
		if err != nil {
			firstErr = cmpErr(firstErr, fmt.Errorf("vault: key file: %w", err))
			continue
		}
		st := fileStamp{fi.Size(), fi.ModTime()}
		if old, ok := r.seen[id]; ok && old == st {
			continue
		}
		raw, err := readKeyFile(path)
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			continue
		}
		k := newKEK(id, raw)
		clear(raw)
		k.created, k.path = st.mtime, path
		add[id], stamps[id] = k, st
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for id, k := range v.keks {
		if _, ok := files[id]; !ok && k.path != "" {
			k.wipe()
			delete(v.keks, id)
			delete(r.seen, id)
		}
	}
	for id, k := range add {
		if old := v.keks[id]; old != nil {
			old.wipe()
		}
		v.keks[id] = k
		r.seen[id] = stamps[id]
	}
	v.primary = 0
	for id := range v.keks {
		v.primary = max(v.primary, id)
	}
	return firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// AddKEK creates a new random KEK in the keyring directory, numbered one
// above every KEK there, and returns its id: it is the primary from now
// on, here and, once they look, in every process sharing the directory.
// It returns an error for a Vault made by New.
func (v *Vault) AddKEK() (uint32, error) {
	r := v.ring
	if r == nil {
		return 0, errors.New("vault: this vault has no keyring directory")
	}
	for range 10 {
		if err := v.Refresh(); err != nil {
			return 0, err
		}
		v.mu.RLock()
		id := v.primary + 1
		v.mu.RUnlock()
		if id == 0 {
			return 0, errors.New("vault: KEK ids exhausted")
		}
		raw, err := createKeyFile(filepath.Join(r.dir, kekName(id)), v.rand)
		if errors.Is(err, fs.ErrExist) {
			continue // another process added this id first; number again
		}
		if err != nil {
			return 0, err
		}
		clear(raw)
		if err := v.Refresh(); err != nil {
			return 0, err
		}
		return id, nil
	}
	return 0, errors.New("vault: could not add a KEK: the keyring keeps changing")
}

// Destroy overwrites the file of KEK id with random bytes, syncs it,
// removes it and syncs the directory, then forgets the KEK: every wrapped
// key and secret it protected, in the database and in every backup, can
// no longer be opened. It refuses the primary KEK. Destroying a KEK that
// is already gone is not an error. The overwrite is best effort: on a
// copy-on-write or wear-levelled medium old blocks may survive it, so the
// keyring belongs on storage that is not snapshotted with the database.
func (v *Vault) Destroy(id uint32) error {
	r := v.ring
	if r == nil {
		return errors.New("vault: this vault has no keyring directory")
	}
	if err := v.Refresh(); err != nil {
		return err
	}
	v.mu.RLock()
	k, primary := v.keks[id], v.primary
	v.mu.RUnlock()
	if id == primary && k != nil {
		return fmt.Errorf("vault: KEK %d is the primary and cannot be destroyed", id)
	}
	if k == nil {
		return nil
	}
	if err := shred(k.path); err != nil {
		return err
	}
	return v.Refresh()
}

// shred overwrites path with random bytes of its size, syncs, removes it
// and syncs its directory.
func shred(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vault: destroy key file: %w", err)
	}
	junk := make([]byte, KEKSize)
	_, err = io.ReadFull(cryptorand.Reader, junk)
	if err == nil {
		_, err = f.WriteAt(junk, 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("vault: overwrite key file %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vault: remove key file: %w", err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// loadOrCreate reads the key file at path, or creates it with KEKSize
// random bytes.
func loadOrCreate(path string, rand io.Reader) ([]byte, error) {
	raw, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw, err = createKeyFile(path, rand)
		if errors.Is(err, fs.ErrExist) {
			// Another process won the race; use its key.
			return readKeyFile(path)
		}
	}
	return raw, err
}

// readKeyFile reads and checks a key file. It returns an error satisfying
// errors.Is(err, fs.ErrNotExist) if the file does not exist.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vault: open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("vault: stat key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("vault: key file %s is not a regular file (mode %s)", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("vault: key file %s has mode %#o, which lets group or others access it; "+
			"run chmod 600 %s (and check who may have read it)", path, perm, path)
	}
	if fi.Size() != KEKSize {
		return nil, fmt.Errorf("vault: key file %s is %d bytes, want exactly %d", path, fi.Size(), KEKSize)
	}
	// Read one byte more than expected to catch a file that grew after Stat.
	buf := make([]byte, KEKSize+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		clear(buf)
		return nil, fmt.Errorf("vault: read key file %s: %w", path, err)
	}
	if n != KEKSize {
		clear(buf)
		return nil, fmt.Errorf("vault: key file %s is %d bytes, want exactly %d", path, n, KEKSize)
	}
	return buf[:KEKSize], nil
}

// createKeyFile writes a new random key to path, which must not exist: it
// returns an error satisfying errors.Is(err, fs.ErrExist) if it does.
func createKeyFile(path string, rand io.Reader) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vault: create key directory: %w", err)
	}
	kek := make([]byte, KEKSize)
	if _, err := io.ReadFull(rand, kek); err != nil {
		return nil, fmt.Errorf("vault: generate key: %w", err)
	}

	// Write to a temporary file, then link it into place: link fails rather
	// than overwrite an existing key, and readers never see a partial file.
	tmp, err := os.CreateTemp(dir, ".kek-*.tmp")
	if err != nil {
		clear(kek)
		return nil, fmt.Errorf("vault: create key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	err = writeSync(tmp, kek)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmpName, path)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			// The file system may not support hard links; fall back to an
			// exclusive create, which still never overwrites a key.
			err = createExclusive(path, kek)
		}
	}
	if err != nil {
		clear(kek)
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		return nil, fmt.Errorf("vault: create key file: %w", err)
	}
	syncDir(dir)
	return kek, nil
}

// syncDir syncs a directory, best effort, to persist entries created or
// removed in it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// writeSync sets f's mode to 0600 regardless of umask, writes b and syncs.
func writeSync(f *os.File, b []byte) error {
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Sync()
}

// createExclusive creates path, which must not exist, and writes b to it.
// On a write error it removes the partial file.
func createExclusive(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = writeSync(f, b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
