// Package audit is the tamper-evident log of staff access to personal
// data. Every staff read or change of personal data records an entry; the
// entries form a hash chain (package auditchain) that Verify checks.
//
// Entries name accounts by id, never by email or mobile, and hold no
// personal data in their detail text.
package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// Log records and verifies audit entries. Record is for the services that
// audit what staff do; reading and verifying the log are staff actions
// themselves (staff.ActAuditView), authorised and recorded here. It is
// safe for concurrent use.
type Log struct {
	store store.AuditStore
	staff StaffDirectory
	clock func() time.Time
}

// StaffDirectory finds staff accounts by id (store.StaffStore).
type StaffDirectory interface {
	StaffByID(ctx context.Context, id string) (*store.Staff, error)
}

// Config holds a Log's dependencies. Store and Clock are required; Staff,
// if set, names the staff actors of the pages Read returns
// (Page.Emails).
type Config struct {
	Store store.AuditStore
	Staff StaffDirectory
	Clock func() time.Time
}

// New returns a Log over cfg.Store.
func New(cfg Config) (*Log, error) {
	if cfg.Store == nil || cfg.Clock == nil {
		return nil, errors.New("audit: missing dependency")
	}
	return &Log{store: cfg.Store, staff: cfg.Staff, clock: cfg.Clock}, nil
}

// Record appends an entry: actor (a staff id, staff.SystemID for the
// server's housekeeping, or staff.OperatorID for the holder of the data
// directory), the role acted under, the action (e.g.
// "privacy.extend"), the subject (e.g. an account or request id) and a
// detail without personal data.
func (l *Log) Record(ctx context.Context, actor, role, action, subject, detail string) error {
	_, err := l.store.AppendAudit(ctx, auditchain.Entry{
		At: l.clock(), Actor: actor, Role: role, Action: action, Subject: subject, Detail: detail,
	})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Verify reads the whole chain and checks it for staff member by, who
// must be allowed staff.ActAuditView: from the genesis, or, once retention
// has deleted old entries, from the recorded anchor (the last deleted
// entry), which the oldest remaining entry must follow directly. It
// returns the number of entries checked and, if the chain is broken, an
// *auditchain.BreakError naming the first bad entry. The check and its
// outcome are recorded in the log.
func (l *Log) Verify(ctx context.Context, by staff.Principal) (int, error) {
	if err := staff.Authorize(by, staff.ActAuditView); err != nil {
		return 0, err
	}
	c, err := l.read(ctx)
	if err != nil {
		return 0, err
	}
	n, verr := len(c.entries), c.verify()
	detail := fmt.Sprintf("verified %d entries: intact", n)
	if verr != nil {
		detail = fmt.Sprintf("verified %d entries: broken", n)
	}
	if err := l.Record(ctx, by.ID, by.Role, staff.ActAuditView, Subject, detail); err != nil {
		// A truncated log refuses new entries: report what was found too.
		return n, errors.Join(verr, err)
	}
	return n, verr
}

// Subject is the audit subject of reads and checks of the log itself.
const Subject = "audit_log"

// chain is the log as read at one time: its state and every entry.
type chain struct {
	state   store.AuditHead
	entries []auditchain.Entry
}

// read reads the log's state and then every entry, oldest first. If
// retention moved the anchor meanwhile, it reads again (twice at most), so
// that entries and anchor agree.
func (l *Log) read(ctx context.Context) (chain, error) {
	for attempt := 0; ; attempt++ {
		st, err := l.store.AuditHead(ctx)
		if err != nil {
			return chain{}, err
		}
		var all []auditchain.Entry
		var after int64
		for {
			batch, err := l.store.AuditEntries(ctx, after, readBatch)
			if err != nil {
				return chain{}, err
			}
			all = append(all, batch...)
			if len(batch) < readBatch {
				break
			}
			after = batch[len(batch)-1].Seq
		}
		again, err := l.store.AuditHead(ctx)
		if err != nil {
			return chain{}, err
		}
		if again.Anchor.Seq == st.Anchor.Seq || attempt == 2 {
			return chain{state: st, entries: all}, nil
		}
	}
}

// readBatch is how many entries the log reads from the store at a time.
const readBatch = 5000

// verify checks c's chain from the genesis or from its anchor.
func (c chain) verify() error {
	anchor := c.state.Anchor
	if anchor.Seq == 0 {
		return auditchain.Verify(c.entries)
	}
	if len(c.entries) > 0 && c.entries[0].Seq != anchor.Seq+1 {
		return &auditchain.BreakError{Index: 0, Seq: c.entries[0].Seq, Kind: auditchain.KindSeq,
			Detail: fmt.Sprintf("oldest entry is %d but retention's anchor is %d: entries were removed", c.entries[0].Seq, anchor.Seq)}
	}
	return auditchain.VerifyFrom(anchor.Hash, c.entries)
}

// head returns the newest entry of c, or its anchor if it holds none.
func (c chain) head() auditchain.Checkpoint {
	if len(c.entries) == 0 {
		return c.state.Anchor
	}
	last := c.entries[len(c.entries)-1]
	return auditchain.Checkpoint{Seq: last.Seq, Hash: last.Hash}
}

// Head returns the head of the log: the sequence number and hash of its
// newest entry or, if retention has deleted every entry, of the last one
// it deleted; the zero Checkpoint for a log that never had an entry. Its
// text form (auditchain.Checkpoint.String, "SEQ:HEX") is what an operator
// keeps outside the database, and what the transparency report carries,
// to prove the log against later with VerifyHead. Head does not check the
// chain (Verify and VerifyHead do). by must be allowed staff.ActAuditView;
// the read is recorded in the log, after the head it returns.
func (l *Log) Head(ctx context.Context, by staff.Principal) (auditchain.Checkpoint, error) {
	if err := staff.Authorize(by, staff.ActAuditView); err != nil {
		return auditchain.Checkpoint{}, err
	}
	h, err := l.Checkpoint(ctx)
	if err != nil {
		return h, err
	}
	if err := l.Record(ctx, by.ID, by.Role, staff.ActAuditView, Subject, fmt.Sprintf("read the head, seq %d", h.Seq)); err != nil {
		return auditchain.Checkpoint{}, err
	}
	return h, nil
}

// Checkpoint returns the head of the log as Head does, without a staff
// principal and unrecorded, for services that embed it in what they sign
// under their own authorisation (the transparency report).
func (l *Log) Checkpoint(ctx context.Context) (auditchain.Checkpoint, error) {
	st, err := l.store.AuditHead(ctx)
	if err != nil {
		return auditchain.Checkpoint{}, err
	}
	if st.Newest.Seq == 0 {
		return st.Anchor, nil
	}
	return st.Newest, nil
}

// Problem is why a log does not prove a head (HeadError).
type Problem string

// The problems VerifyHead reports.
const (
	// Tampered: the chain is broken, or the entry at the head's sequence
	// number has another hash: entries were changed, inserted, reordered
	// or rewritten with recomputed hashes.
	Tampered Problem = "tampered"
	// Truncated: entries are missing from the end of the log (the head's
	// entry, or entries after it) although the log had counted them:
	// someone deleted them.
	Truncated Problem = "truncated"
	// RolledBack: the log ends before the head and never counted that
	// far: it is an older copy (restored from a backup, or rewritten
	// wholesale) than the one the head was taken from.
	RolledBack Problem = "rolled_back"
	// Pruned: retention has since deleted the head's entry, so the log can
	// no longer prove it (nothing is wrong with the log for that); verify
	// against a newer head.
	Pruned Problem = "pruned"
)

// HeadError is the error VerifyHead returns when the log does not prove
// the head. It unwraps to an *errs.Error (Gone for Pruned, Conflict
// otherwise) and, for a broken chain, to the *auditchain.BreakError.
type HeadError struct {
	Problem Problem
	Head    auditchain.Checkpoint // the head checked against
	Detail  string                // what was found, without personal data
	Break   *auditchain.BreakError
}

func (e *HeadError) Error() string {
	return fmt.Sprintf("audit log does not prove head %s: %s: %s", e.Head, e.Problem, e.Detail)
}

// Unwrap returns the domain error and the chain break, if any.
func (e *HeadError) Unwrap() []error {
	code := errs.Conflict
	if e.Problem == Pruned {
		code = errs.Gone
	}
	out := []error{errs.E(code, "audit log %s: %s", e.Problem, e.Detail)}
	if e.Break != nil {
		out = append(out, e.Break)
	}
	return out
}

// HeadProof is what VerifyHead established: the log holds the entry Head
// names, with the same hash, and its chain is intact from the entry after
// Anchor, through Head, to Current.
type HeadProof struct {
	Head    auditchain.Checkpoint // the head checked against
	Current auditchain.Checkpoint // the log's head when it was checked
	Anchor  int64                 // the retention anchor the chain was checked from; 0 for the genesis
	Entries int                   // entries checked
}

// VerifyHead proves the log against want, a head taken earlier (Head) and
// kept outside the database, for staff member by, who must be allowed
// staff.ActAuditView. The log must hold want's entry with want's hash (or,
// if want is retention's anchor, have that anchor), its whole chain must
// be intact from the anchor, and it must still hold every entry it
// counted. On success it returns the proof; otherwise a *HeadError says
// which Problem it found, or another error says why the log could not be
// read. The check and its outcome are recorded in the log (a truncated log
// refuses the record: then the error holds both).
func (l *Log) VerifyHead(ctx context.Context, by staff.Principal, want auditchain.Checkpoint) (HeadProof, error) {
	if err := staff.Authorize(by, staff.ActAuditView); err != nil {
		return HeadProof{}, err
	}
	c, err := l.read(ctx)
	if err != nil {
		return HeadProof{}, err
	}
	proof := HeadProof{Head: want, Current: c.head(), Anchor: c.state.Anchor.Seq, Entries: len(c.entries)}
	verr := c.prove(want)
	outcome := "intact"
	var he *HeadError
	if errors.As(verr, &he) {
		outcome = string(he.Problem)
	}
	if err := l.Record(ctx, by.ID, by.Role, staff.ActAuditView, Subject,
		fmt.Sprintf("verified %d entries against head %d: %s", len(c.entries), want.Seq, outcome)); err != nil {
		// A truncated log refuses new entries: report what was found too.
		return HeadProof{}, errors.Join(verr, err)
	}
	if verr != nil {
		return HeadProof{}, verr
	}
	return proof, nil
}

// prove checks c against want; see VerifyHead.
func (c chain) prove(want auditchain.Checkpoint) error {
	fail := func(p Problem, format string, args ...any) error {
		return &HeadError{Problem: p, Head: want, Detail: fmt.Sprintf(format, args...)}
	}
	if err := c.verify(); err != nil {
		var brk *auditchain.BreakError
		errors.As(err, &brk)
		return &HeadError{Problem: Tampered, Head: want, Detail: err.Error(), Break: brk}
	}
	anchor, newest := c.state.Anchor, c.head()
	switch {
	case want.Seq < anchor.Seq:
		return fail(Pruned, "retention has deleted entries up to seq %d, the head's entry among them; verify against a newer head", anchor.Seq)
	case want.Seq == anchor.Seq:
		if !bytes.Equal(want.Hash, anchor.Hash) {
			return fail(Tampered, "the entry at seq %d, which retention deleted, had another hash", want.Seq)
		}
	case want.Seq > newest.Seq && c.state.Counted < want.Seq:
		return fail(RolledBack, "the log ends at seq %d and never reached seq %d: it is older than the head", newest.Seq, want.Seq)
	case want.Seq > newest.Seq:
		return fail(Truncated, "entries from seq %d to %d are missing from the end of the log", newest.Seq+1, c.state.Counted)
	default:
		// The chain is consecutive from the anchor, so the entry is here.
		if err := auditchain.VerifyCheckpoint(c.entries, want); err != nil {
			var brk *auditchain.BreakError
			errors.As(err, &brk)
			return &HeadError{Problem: Tampered, Head: want, Detail: "the entry at the head's seq has another hash: the log was rewritten, or rolled back and written on", Break: brk}
		}
	}
	if c.state.Counted > newest.Seq {
		return fail(Truncated, "entries from seq %d to %d are missing from the end of the log", newest.Seq+1, c.state.Counted)
	}
	return nil
}

// Page is a window of the log, oldest entry first, with the sequence
// number of the newest entry in the whole log when it was read (0 for an
// empty log).
type Page struct {
	Entries []auditchain.Entry
	Last    int64
	// Emails are the work emails of the staff actors of Entries, by id
	// (when the Log has a StaffDirectory). The System, the operator and
	// staff accounts that no longer exist have none.
	Emails map[string]string
}

// Read returns up to limit entries after sequence number after, oldest
// first; a negative after reads the newest limit entries. by must be
// allowed staff.ActAuditView; the read is recorded in the log (after
// Page.Last). A limit below 1 is Invalid.
func (l *Log) Read(ctx context.Context, by staff.Principal, after int64, limit int) (Page, error) {
	if err := staff.Authorize(by, staff.ActAuditView); err != nil {
		return Page{}, err
	}
	if limit < 1 {
		return Page{}, errs.Field(errs.Invalid, "limit", "limit must be positive")
	}
	st, err := l.store.AuditHead(ctx)
	if err != nil {
		return Page{}, err
	}
	last := st.Newest.Seq
	if after < 0 {
		after = max(0, last-int64(limit))
	}
	es, err := l.store.AuditEntries(ctx, after, limit)
	if err != nil {
		return Page{}, err
	}
	detail := fmt.Sprintf("viewed no entries after %d", after)
	if len(es) > 0 {
		detail = fmt.Sprintf("viewed entries %d to %d", es[0].Seq, es[len(es)-1].Seq)
	}
	if err := l.Record(ctx, by.ID, by.Role, staff.ActAuditView, Subject, detail); err != nil {
		return Page{}, err
	}
	emails, err := l.emails(ctx, es)
	if err != nil {
		return Page{}, err
	}
	return Page{Entries: es, Last: last, Emails: emails}, nil
}

// emails returns the work emails of the staff actors of es, by id.
func (l *Log) emails(ctx context.Context, es []auditchain.Entry) (map[string]string, error) {
	out := map[string]string{}
	if l.staff == nil {
		return out, nil
	}
	seen := map[string]bool{}
	for _, e := range es {
		if seen[e.Actor] || e.Actor == staff.SystemID || e.Actor == staff.OperatorID {
			continue
		}
		seen[e.Actor] = true
		st, err := l.staff.StaffByID(ctx, e.Actor)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[e.Actor] = st.Email
	}
	return out, nil
}

// About returns up to limit entries about subject, newest first, for staff
// member by, who must be allowed staff.ActAuditView; the read is recorded.
func (l *Log) About(ctx context.Context, by staff.Principal, subject string, limit int) ([]auditchain.Entry, error) {
	if err := staff.Authorize(by, staff.ActAuditView); err != nil {
		return nil, err
	}
	es, err := l.store.AuditEntriesFor(ctx, subject, limit)
	if err != nil {
		return nil, err
	}
	if err := l.Record(ctx, by.ID, by.Role, staff.ActAuditView, Subject,
		fmt.Sprintf("viewed %d entries about %s", len(es), subject)); err != nil {
		return nil, err
	}
	return es, nil
}
