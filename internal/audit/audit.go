// Package audit is the tamper-evident log of staff access to personal
// data. Every staff read or change of personal data records an entry; the
// entries form a hash chain (package auditchain) that Verify checks.
//
// Entries name accounts by id, never by email or mobile, and hold no
// personal data in their detail text.
package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/store"
)

// Log records and verifies audit entries. It is safe for concurrent use.
type Log struct {
	store store.AuditStore
	clock func() time.Time
}

// New returns a Log over st.
func New(st store.AuditStore, clock func() time.Time) *Log { return &Log{store: st, clock: clock} }

// Record appends an entry: actor (a staff id, or "operator" for the
// holder of the data directory), the role acted under, the action (e.g.
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

// Verify reads the whole chain and checks it: from the genesis, or, once
// retention has deleted old entries, from the recorded anchor (the last
// deleted entry), which the oldest remaining entry must follow directly.
// It returns the number of entries checked and, if the chain is broken, an
// *auditchain.BreakError naming the first bad entry.
func (l *Log) Verify(ctx context.Context) (int, error) {
	anchorSeq, anchorHash, err := l.store.AuditAnchor(ctx)
	if err != nil {
		return 0, err
	}
	var all []auditchain.Entry
	var after int64
	for {
		batch, err := l.store.AuditEntries(ctx, after, 5000)
		if err != nil {
			return 0, err
		}
		all = append(all, batch...)
		if len(batch) < 5000 {
			break
		}
		after = batch[len(batch)-1].Seq
	}
	if anchorSeq == 0 {
		return len(all), auditchain.Verify(all)
	}
	if len(all) > 0 && all[0].Seq != anchorSeq+1 {
		return 0, &auditchain.BreakError{Index: 0, Seq: all[0].Seq, Kind: auditchain.KindSeq,
			Detail: fmt.Sprintf("oldest entry is %d but retention's anchor is %d: entries were removed", all[0].Seq, anchorSeq)}
	}
	return len(all), auditchain.VerifyFrom(anchorHash, all)
}

// Entries returns up to limit entries after seq, oldest first.
func (l *Log) Entries(ctx context.Context, after int64, limit int) ([]auditchain.Entry, error) {
	return l.store.AuditEntries(ctx, after, limit)
}

// About returns up to limit entries about subject, newest first.
func (l *Log) About(ctx context.Context, subject string, limit int) ([]auditchain.Entry, error) {
	return l.store.AuditEntriesFor(ctx, subject, limit)
}
