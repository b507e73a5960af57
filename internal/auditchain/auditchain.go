// Package auditchain makes the staff audit log tamper-evident with a hash
// chain: every entry's hash covers its fields and the hash of the entry
// before it, so changing, deleting, inserting or reordering entries breaks
// the chain at the first affected entry.
//
// # What the chain does and does not prove
//
// The hash is an unkeyed SHA-256, so someone who can rewrite the whole table
// can also recompute every hash after the change. The chain therefore proves
// integrity only relative to a head recorded where that person cannot
// write: a Checkpoint (the Seq and Hash of the newest entry) copied
// periodically to another system, printed in the signed transparency report,
// or mailed to the data-protection officer. VerifyCheckpoint checks a chain
// against such a record. Retention may delete old entries from the start of
// the chain; VerifyFrom verifies what remains from the hash of the last
// deleted entry.
//
// Entries hold no personal data beyond staff and account identifiers:
// Subject is an account ID, never an email address or phone number, and
// Detail is free text that must not contain personal data.
//
// All functions are pure and safe for concurrent use.
package auditchain

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nitronet/nitronet/internal/errs"
)

// domain separates these hashes from any other SHA-256 use.
const domain = "nitronet-auditchain-v1"

// HashSize is the length of Entry.Hash.
const HashSize = sha256.Size

// MaxFieldLen bounds each string field of an entry, in bytes (Validate).
const MaxFieldLen = 4096

// Entry is one record of the staff audit log.
type Entry struct {
	Seq      int64     // 1 for the first entry, then consecutive
	At       time.Time // when the action happened; whole seconds after Append
	Actor    string    // staff ID
	Role     string    // the staff role the action was taken under
	Action   string    // e.g. "account.view", "export.download"
	Subject  string    // e.g. an account ID; never an email address
	Detail   string    // free text without personal data
	PrevHash []byte    // Hash of the previous entry; empty for Seq 1
	Hash     []byte    // ComputeHash of this entry
}

// ComputeHash returns the SHA-256 hash of e over every field except Hash.
//
// The hashed message is the domain string "nitronet-auditchain-v1", then
// Seq as 8 big-endian bytes, At as its Unix seconds (8 big-endian bytes)
// and nanoseconds (4 big-endian bytes), then Actor, Role, Action, Subject,
// Detail and PrevHash, each as an 8-byte big-endian length followed by its
// bytes. Every field has a fixed size or a length prefix, so two entries
// that differ in any hashed field have different messages. At's location
// and monotonic reading are not hashed: entries at the same instant hash
// alike. A nil and an empty PrevHash hash alike.
func (e Entry) ComputeHash() []byte {
	h := sha256.New()
	var buf [12]byte
	writeBytes := func(b []byte) {
		binary.BigEndian.PutUint64(buf[:8], uint64(len(b)))
		h.Write(buf[:8])
		h.Write(b)
	}
	h.Write([]byte(domain))
	binary.BigEndian.PutUint64(buf[:8], uint64(e.Seq))
	h.Write(buf[:8])
	binary.BigEndian.PutUint64(buf[:8], uint64(e.At.Unix()))
	binary.BigEndian.PutUint32(buf[8:12], uint32(e.At.Nanosecond()))
	h.Write(buf[:12])
	for _, s := range []string{e.Actor, e.Role, e.Action, e.Subject, e.Detail} {
		writeBytes([]byte(s))
	}
	writeBytes(e.PrevHash)
	return h.Sum(nil)
}

// Append returns e chained after prev, the current newest entry, or as the
// first entry if prev is nil: Seq is prev.Seq+1 (or 1), PrevHash is a copy
// of prev.Hash (or nil), At is truncated to whole seconds in UTC so that it
// survives storage unchanged, and Hash is set. Any Seq, PrevHash or Hash in
// e is ignored. Append does not check e; see Validate.
func Append(prev *Entry, e Entry) Entry {
	e.Seq, e.PrevHash = 1, nil
	if prev != nil {
		e.Seq = prev.Seq + 1
		e.PrevHash = bytes.Clone(prev.Hash)
	}
	e.At = e.At.UTC().Truncate(time.Second)
	e.Hash = e.ComputeHash()
	return e
}

// Validate reports whether e may be recorded: Actor, Role and Action are
// non-empty, At is set, every string is valid UTF-8 of at most MaxFieldLen
// bytes, and Actor and Subject contain no "@" (identifiers, never email
// addresses). It returns an *errs.Error with code Invalid.
func (e Entry) Validate() error {
	if e.At.IsZero() {
		return errs.E(errs.Invalid, "audit entry time is not set")
	}
	for _, f := range []struct {
		name, v  string
		required bool
	}{
		{"actor", e.Actor, true},
		{"role", e.Role, true},
		{"action", e.Action, true},
		{"subject", e.Subject, false},
		{"detail", e.Detail, false},
	} {
		switch {
		case f.required && strings.TrimSpace(f.v) == "":
			return errs.E(errs.Invalid, "audit entry %s is empty", f.name)
		case len(f.v) > MaxFieldLen:
			return errs.E(errs.Invalid, "audit entry %s is longer than %d bytes", f.name, MaxFieldLen)
		case !utf8.ValidString(f.v):
			return errs.E(errs.Invalid, "audit entry %s is not valid UTF-8", f.name)
		}
	}
	if strings.Contains(e.Actor, "@") || strings.Contains(e.Subject, "@") {
		return errs.E(errs.Invalid, "audit entry actor and subject must be identifiers, not email addresses")
	}
	return nil
}

// Kind classifies a chain break.
type Kind string

// The kinds of break Verify reports.
const (
	// KindHash: the entry's stored hash does not match its fields, so a
	// field (or the hash) was changed.
	KindHash Kind = "hash"
	// KindSeq: the entry's Seq is not one more than the previous entry's
	// (or not 1 at the start of a chain): an entry was deleted, inserted
	// or moved.
	KindSeq Kind = "seq"
	// KindLink: the entry's PrevHash is not the previous entry's Hash (or
	// the anchor): an entry before it was replaced, deleted, inserted or
	// moved, and hashes were recomputed to hide it.
	KindLink Kind = "link"
	// KindCheckpoint: the chain does not contain a recorded checkpoint:
	// it was rewritten or truncated after the checkpoint was taken.
	KindCheckpoint Kind = "checkpoint"
)

// BreakError reports the first entry at which a chain fails to verify.
type BreakError struct {
	Index  int   // position in the slice passed to Verify
	Seq    int64 // Seq of the entry at Index, as stored
	Kind   Kind
	Detail string
}

func (e *BreakError) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d (entry %d): %s: %s", e.Seq, e.Index, e.Kind, e.Detail)
}

// Verify checks that entries, oldest first, form a complete chain from its
// first entry: entries[0] has Seq 1 and an empty PrevHash, every Seq is one
// more than the one before, every PrevHash equals the previous Hash, and
// every Hash equals ComputeHash. It returns nil for a valid (or empty)
// chain, otherwise a *BreakError for the first entry that fails. For each
// entry it checks its own hash first, then its Seq, then its link.
func Verify(entries []Entry) error {
	return verify(nil, false, entries)
}

// VerifyFrom checks that entries, oldest first, form a chain continuing
// from the entry whose Hash is anchorHash: entries[0].PrevHash must equal
// anchorHash, and the rest is checked as by Verify, except that entries[0]
// may have any Seq from 2 up (it is not known which Seq the anchor had). Use it for a
// chain whose oldest entries retention has deleted, or to verify only the
// entries added since a known-good head. An empty anchorHash means the
// genesis and makes VerifyFrom the same as Verify.
func VerifyFrom(anchorHash []byte, entries []Entry) error {
	if len(anchorHash) == 0 {
		return Verify(entries)
	}
	return verify(anchorHash, true, entries)
}

func verify(anchor []byte, anchored bool, entries []Entry) error {
	prevHash := anchor
	for i, e := range entries {
		brk := func(k Kind, format string, args ...any) error {
			return &BreakError{Index: i, Seq: e.Seq, Kind: k, Detail: fmt.Sprintf(format, args...)}
		}
		if !equal(e.Hash, e.ComputeHash()) {
			return brk(KindHash, "stored hash does not match the entry's fields")
		}
		switch {
		case i == 0 && !anchored && e.Seq != 1:
			return brk(KindSeq, "chain starts at seq %d, want 1", e.Seq)
		case i == 0 && anchored && e.Seq < 2:
			return brk(KindSeq, "seq %d cannot follow an anchor entry", e.Seq)
		case i > 0 && e.Seq != entries[i-1].Seq+1:
			return brk(KindSeq, "want seq %d after seq %d", entries[i-1].Seq+1, entries[i-1].Seq)
		}
		if !equal(e.PrevHash, prevHash) {
			if i == 0 && anchored {
				return brk(KindLink, "previous hash does not match the anchor")
			}
			if i == 0 {
				return brk(KindLink, "first entry has a previous hash")
			}
			return brk(KindLink, "previous hash does not match seq %d", entries[i-1].Seq)
		}
		prevHash = e.Hash
	}
	return nil
}

// Checkpoint is a chain head recorded outside the database: the Seq and
// Hash of an entry. The zero Checkpoint (Seq 0, no Hash) is the head of an
// empty chain.
type Checkpoint struct {
	Seq  int64
	Hash []byte
}

// String returns c in its text form, SEQ:HEX: the decimal Seq, a colon and
// the Hash in lowercase hexadecimal (64 digits), e.g. "42:9f86…"; the
// empty chain's head is "0:". ParseCheckpoint reads it back.
func (c Checkpoint) String() string {
	return strconv.FormatInt(c.Seq, 10) + ":" + hex.EncodeToString(c.Hash)
}

// ParseCheckpoint parses the text form of a checkpoint (see
// Checkpoint.String), ignoring surrounding white space; hexadecimal digits
// may be in either case. Seq must be a decimal number from 1 up with a
// HashSize-byte hash, or 0 with none. Anything else is an *errs.Error with
// code Invalid about the field "head".
func ParseCheckpoint(s string) (Checkpoint, error) {
	s = strings.TrimSpace(s)
	seqText, hashText, ok := strings.Cut(s, ":")
	if !ok {
		return Checkpoint{}, errs.Field(errs.Invalid, "head", "audit head %q is not SEQ:HASH", clip(s))
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil || seq < 0 || seqText != strconv.FormatInt(seq, 10) {
		return Checkpoint{}, errs.Field(errs.Invalid, "head", "audit head sequence number %q is not a number", clip(seqText))
	}
	hash, err := hex.DecodeString(hashText)
	switch {
	case err != nil:
		return Checkpoint{}, errs.Field(errs.Invalid, "head", "audit head hash is not hexadecimal")
	case seq == 0 && len(hash) != 0:
		return Checkpoint{}, errs.Field(errs.Invalid, "head", "the audit head of an empty log (0) has no hash")
	case seq > 0 && len(hash) != HashSize:
		return Checkpoint{}, errs.Field(errs.Invalid, "head", "audit head hash has %d hexadecimal digits, want %d", len(hashText), 2*HashSize)
	}
	if seq == 0 {
		hash = nil
	}
	return Checkpoint{Seq: seq, Hash: hash}, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Head returns the checkpoint of the newest entry in entries, and false if
// entries is empty. Hash is a copy.
func Head(entries []Entry) (Checkpoint, bool) {
	if len(entries) == 0 {
		return Checkpoint{}, false
	}
	last := entries[len(entries)-1]
	return Checkpoint{Seq: last.Seq, Hash: bytes.Clone(last.Hash)}, true
}

// VerifyCheckpoint reports whether entries contain the entry cp records,
// with the same Hash. Together with Verify or VerifyFrom over the same
// entries, success proves that nothing up to cp.Seq was changed since cp was
// taken. It returns a *BreakError of kind KindCheckpoint if the entry with
// cp.Seq has a different hash or is absent (deleted, or entries is
// truncated before it). Index and Seq name the differing entry, or are -1
// and cp.Seq when it is absent.
func VerifyCheckpoint(entries []Entry, cp Checkpoint) error {
	for i, e := range entries {
		if e.Seq != cp.Seq {
			continue
		}
		if !equal(e.Hash, cp.Hash) {
			return &BreakError{Index: i, Seq: e.Seq, Kind: KindCheckpoint, Detail: "hash differs from the recorded checkpoint"}
		}
		return nil
	}
	return &BreakError{Index: -1, Seq: cp.Seq, Kind: KindCheckpoint, Detail: "checkpointed entry is missing"}
}

// equal compares hashes in constant time. Hashes are not secret, but this
// keeps comparisons uniform across the codebase.
func equal(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}
