// Package rekey rotates the key-encryption key (KEK) of the vault.
//
// A rotation adds a new KEK to the keyring (it becomes the primary), then
// walks every account in batches: each account's data key is re-wrapped
// under the new KEK and its blind indexes are derived from it again (the
// data key itself, and everything sealed under it, is unchanged). Staff
// TOTP seeds are re-sealed too, and so are the jobs of the outbound queue
// (Config.Queue), which are sealed under the KEK, not under an account's
// data key. Progress is kept in the database after
// every batch, so a rotation interrupted by a crash resumes where it
// stopped; the server keeps serving throughout, since the vault opens
// keys wrapped under any KEK of the keyring and lookups try the indexes
// of every KEK.
//
// The old KEK is destroyed (its file overwritten and removed) once
// nothing uses it: after Settle has passed since the new KEK became the
// primary, so that every process sharing the keyring has long stopped
// wrapping under the old one, a verification pass must find every
// account and secret under the new KEK. From then on a backup of the
// database taken before the rotation cannot be decrypted with any KEK
// that exists: an account erased since that backup is erased from the
// backup too. With rotation every Every (30 days by default), a backup
// becomes unreadable at most one rotation period (plus Settle) after an
// erasure.
//
// Every rotation is a staff action (staff.ActKEKRotate) or the scheduled
// job of `nitronet serve` acting as staff.System, and is audited with its
// counts; the audit never names keys.
package rekey

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/vault"
)

// Defaults.
const (
	// DefaultEvery is the scheduled rotation period.
	DefaultEvery = inventory.DefaultKEKRotationDays * 24 * time.Hour
	// DefaultSettle is how long a rotation waits, after its KEK became
	// the primary, before it verifies and destroys the old one: far more
	// than any request that wrapped a key under the old KEK can take to
	// commit (the server's write timeout is 90 s), and than a vault takes
	// to notice a new KEK.
	DefaultSettle = 2 * time.Minute
	// DefaultBatch is the number of accounts re-keyed per transaction.
	DefaultBatch = 500
	// auditSubject is the audit subject of rotations.
	auditSubject = "kek"
	// maxVerify bounds the verification passes of one call.
	maxVerify = 3
)

// Accounts computes an account's rekey (*accounts.Service).
type Accounts interface {
	Rekey(a store.KeyedAccount) (store.AccountRekey, bool, error)
}

// Secrets re-seals the staff secrets (*staff.Service).
type Secrets interface {
	ResealSecrets(ctx context.Context) (resealed, unreadable int64, err error)
}

// Queue re-seals the jobs of the outbound queue (*outbound.Queue).
type Queue interface {
	Reseal(ctx context.Context) (resealed, unreadable int64, err error)
}

// Config holds a Service's dependencies and settings.
type Config struct {
	Store    store.RekeyStore
	Vault    *vault.Vault
	Accounts Accounts
	Staff    Secrets
	// Queue, if set, has its queued jobs re-sealed with the staff
	// secrets: they are sealed under the KEK that was primary when they
	// were queued, and would be lost with it.
	Queue  Queue
	Audit  staff.Auditor
	Logger *slog.Logger
	Clock  func() time.Time
	Rand   io.Reader
	// Every is the scheduled rotation period (the --kek-rotation
	// setting); 0 means rotations happen only on demand.
	Every time.Duration
	// Settle defaults to DefaultSettle, Batch to DefaultBatch.
	Settle time.Duration
	Batch  int
}

// Service rotates the KEK. It is safe for concurrent use, and so are
// several processes rotating at once: each re-key applies only if the
// account still holds the wrapped key it was computed from.
type Service struct{ cfg Config }

// New returns a Service. Every field but Every, Settle and Batch is
// required.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Vault == nil || cfg.Accounts == nil || cfg.Staff == nil || cfg.Audit == nil ||
		cfg.Logger == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("rekey: missing dependency")
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	return &Service{cfg: cfg}, nil
}

// Phases of a rotation.
const (
	PhaseRewrapping = "rewrapping" // the first pass over every account is under way
	PhaseSettling   = "settling"   // waiting until DestroyAfter before verifying
	PhaseBlocked    = "blocked"    // verification found accounts it cannot move (Problem)
	PhaseFinished   = "finished"   // the old KEKs are destroyed
)

// Rotation is a rotation as staff see it: ids of KEKs, counts and times,
// never key material.
type Rotation struct {
	ID        string    `json:"id"`
	StartedAt time.Time `json:"started_at"`
	StartedBy string    `json:"started_by"`
	Target    uint32    `json:"target_kek"`
	Phase     string    `json:"phase"`
	Passes    int       `json:"passes"`
	Rewrapped int64     `json:"rewrapped_accounts"`
	Resealed  int64     `json:"resealed_secrets"`
	// DestroyAfter is when the old KEKs may be destroyed, once a
	// verification pass finds nothing under them.
	DestroyAfter time.Time  `json:"destroy_after"`
	Problem      string     `json:"problem,omitempty"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
	Destroyed    []uint32   `json:"destroyed_keks"`
}

// KEK is one key-encryption key of the keyring.
type KEK struct {
	ID      uint32    `json:"id"`
	Primary bool      `json:"primary"`
	Created time.Time `json:"created_at"`
}

// Status is the keyring and its rotations.
type Status struct {
	KEKs []KEK `json:"keks"`
	// Current is the rotation in progress, nil if none.
	Current *Rotation `json:"current"`
	// Recent are the newest finished rotations, newest first.
	Recent []Rotation `json:"recent"`
	// Every is the scheduled period (0: off); NextDue when the next
	// scheduled rotation starts (nil with no schedule).
	Every   time.Duration `json:"every_seconds"`
	NextDue *time.Time    `json:"next_due"`
}

func (s *Service) view(r *store.KEKRotation) Rotation {
	v := Rotation{ID: r.ID, StartedAt: r.StartedAt.UTC(), StartedBy: r.StartedBy, Target: r.Target, Passes: r.Passes,
		Rewrapped: r.Rewrapped, Resealed: r.Resealed, DestroyAfter: r.TargetSince.Add(s.cfg.Settle).UTC(),
		Problem: r.Problem, Destroyed: slices.Clone(r.Destroyed)}
	if v.Destroyed == nil {
		v.Destroyed = []uint32{}
	}
	switch {
	case r.FinishedAt != nil:
		t := r.FinishedAt.UTC()
		v.FinishedAt, v.Phase = &t, PhaseFinished
	case r.Passes == 0:
		v.Phase = PhaseRewrapping
	case r.Problem != "" && !s.cfg.Clock().Before(v.DestroyAfter):
		v.Phase = PhaseBlocked
	default:
		v.Phase = PhaseSettling
	}
	return v
}

// Rotate starts a rotation for by, who must be allowed
// staff.ActKEKRotate, or resumes the one in progress, and carries it as
// far as it can now: through the whole re-wrapping pass and, once Settle
// has passed since its KEK became the primary, through verification and
// the destruction of the old KEKs. It returns the rotation as it then is;
// a caller that wants it finished calls again after DestroyAfter. The
// call is audited with what it did.
func (s *Service) Rotate(ctx context.Context, by staff.Principal) (*Rotation, error) {
	if err := staff.Authorize(by, staff.ActKEKRotate); err != nil {
		return nil, err
	}
	r, started, err := s.current(ctx, by, true)
	if err != nil {
		return nil, err
	}
	w, err := s.advance(ctx, r)
	if aerr := s.audit(ctx, by, r, started, w, true); err == nil {
		err = aerr
	}
	if err != nil {
		return nil, err
	}
	v := s.view(r)
	return &v, nil
}

// Scheduled is the housekeeping job of `nitronet serve`: for by (staff.
// System), it advances the rotation in progress, or starts one when the
// primary KEK is due for rotation (NextDue), and waits out Settle to
// finish it: the old KEK is destroyed before it is Every old. It returns
// how many keys and secrets it moved and KEKs it destroyed; a run that
// did nothing is not audited. It also lets this process's vault forget
// KEKs destroyed elsewhere.
func (s *Service) Scheduled(ctx context.Context, by staff.Principal) (int64, error) {
	if err := staff.Authorize(by, staff.ActKEKRotate); err != nil {
		return 0, err
	}
	_ = s.cfg.Vault.Refresh()
	start := false
	if due := s.nextDue(); due != nil && !s.cfg.Clock().Before(*due) {
		start = true
	}
	r, started, err := s.current(ctx, by, start)
	if errs.Is(err, errs.NotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var w work
	for waited := false; ; waited = true {
		var step work
		step, err = s.advance(ctx, r)
		w.add(step)
		if err != nil || r.FinishedAt != nil || r.Passes == 0 || waited {
			break
		}
		wait := r.TargetSince.Add(s.cfg.Settle).Sub(s.cfg.Clock())
		if wait <= 0 {
			break // verified and blocked: try again at the next run
		}
		t := time.NewTimer(wait + 50*time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			err = ctx.Err()
		case <-t.C:
		}
		if err != nil {
			break
		}
	}
	if aerr := s.audit(ctx, by, r, started, w, false); err == nil {
		err = aerr
	}
	return w.total(), err
}

// Status returns the keyring's KEKs (ids and creation times) and the
// rotations, for by, who must be allowed staff.ActKEKView; the view is
// audited.
func (s *Service) Status(ctx context.Context, by staff.Principal) (*Status, error) {
	if err := staff.Authorize(by, staff.ActKEKView); err != nil {
		return nil, err
	}
	st := &Status{KEKs: []KEK{}, Recent: []Rotation{}, Every: s.cfg.Every, NextDue: s.nextDue()}
	for _, k := range s.cfg.Vault.KEKs() {
		st.KEKs = append(st.KEKs, KEK{ID: k.ID, Primary: k.Primary, Created: k.Created.UTC()})
	}
	rs, err := s.cfg.Store.KEKRotations(ctx, 10)
	if err != nil {
		return nil, err
	}
	for i := range rs {
		v := s.view(&rs[i])
		if rs[i].FinishedAt == nil {
			st.Current = &v
			continue
		}
		st.Recent = append(st.Recent, v)
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActKEKView, auditSubject, "viewed the keyring and its rotations"); err != nil {
		return nil, err
	}
	return st, nil
}

// nextDue returns when the next scheduled rotation starts: early enough
// that it has destroyed the primary KEK before the KEK is Every old (Lead
// before that); nil without a schedule.
func (s *Service) nextDue() *time.Time {
	if s.cfg.Every <= 0 {
		return nil
	}
	for _, k := range s.cfg.Vault.KEKs() {
		if k.Primary {
			t := k.Created.Add(s.cfg.Every - Lead(s.cfg.Every)).UTC()
			return &t
		}
	}
	return nil
}

// Lead is how long before a KEK is every old its scheduled rotation
// starts: an hour, or a quarter of every if that is shorter. It covers the
// job's interval (JobEvery), Settle and the passes over every account, so
// that a KEK is destroyed within every of its creation, and a backup is
// unreadable at most every after an erasure.
func Lead(every time.Duration) time.Duration { return min(time.Hour, every/4) }

// JobEvery is how often `nitronet serve` runs Scheduled.
const JobEvery = 10 * time.Minute

// current returns the rotation in progress, or with start a new one (and
// true); without start and with none in progress, NotFound.
func (s *Service) current(ctx context.Context, by staff.Principal, start bool) (*store.KEKRotation, bool, error) {
	r, err := s.cfg.Store.CurrentKEKRotation(ctx)
	if err == nil || !errs.Is(err, errs.NotFound) || !start {
		return r, false, err
	}
	target, err := s.cfg.Vault.AddKEK()
	if err != nil {
		return nil, false, fmt.Errorf("add a key-encryption key: %w", err)
	}
	id, err := ident.New(s.cfg.Rand, "kek")
	if err != nil {
		return nil, false, err
	}
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	r = &store.KEKRotation{ID: id, StartedAt: now, StartedBy: by.ID, Target: target, TargetSince: now}
	if err := s.cfg.Store.StartKEKRotation(ctx, r); errs.Is(err, errs.Conflict) {
		// Another process started one first; carry on with it (it
		// re-targets to the KEK just added, the newest).
		r, err = s.cfg.Store.CurrentKEKRotation(ctx)
		return r, false, err
	} else if err != nil {
		return nil, false, err
	}
	s.cfg.Logger.Info("key-encryption key rotation started", "rotation", r.ID, "kek", target)
	return r, true, nil
}

// work counts what one call did.
type work struct {
	rewrapped, resealed int64
	destroyed           []uint32
}

func (w work) total() int64 { return w.rewrapped + w.resealed + int64(len(w.destroyed)) }

func (w *work) add(o work) {
	w.rewrapped += o.rewrapped
	w.resealed += o.resealed
	w.destroyed = append(w.destroyed, o.destroyed...)
}

// advance carries r as far as it can go now and saves its progress.
func (s *Service) advance(ctx context.Context, r *store.KEKRotation) (work, error) {
	var w work
	primary, err := s.cfg.Vault.Primary()
	if err != nil {
		return w, err
	}
	if primary != r.Target {
		// A newer KEK appeared (another rotation's, or one added by hand):
		// re-wrap under it, from the start.
		r.Target, r.TargetSince = primary, s.cfg.Clock().UTC().Truncate(time.Second)
		r.Cursor, r.Passes, r.PassDoneAt = "", 0, nil
	}
	if r.Passes == 0 {
		if err := s.firstPass(ctx, r, &w); err != nil {
			return w, err
		}
	}
	if s.cfg.Clock().Before(r.TargetSince.Add(s.cfg.Settle)) {
		return w, nil
	}
	clean := false
	for range maxVerify {
		moved, problems, err := s.pass(ctx, "", nil)
		if err != nil {
			return w, err
		}
		w.rewrapped += moved
		resealed, unreadable, err := s.resealSecrets(ctx)
		if err != nil {
			return w, err
		}
		w.resealed += resealed
		r.Rewrapped, r.Resealed, r.Problem = r.Rewrapped+moved, r.Resealed+resealed, problems.String(unreadable)
		if moved == 0 && resealed == 0 && !problems.blocking() {
			clean = true
			break
		}
	}
	if !clean {
		return w, s.cfg.Store.SaveKEKRotation(ctx, r)
	}
	return w, s.finish(ctx, r, &w)
}

// firstPass re-keys every account from r's cursor on, saving progress
// after every batch, then re-seals the staff secrets.
func (s *Service) firstPass(ctx context.Context, r *store.KEKRotation, w *work) error {
	_, problems, err := s.pass(ctx, r.Cursor, func(cursor string, n int64) error {
		r.Cursor, r.Rewrapped = cursor, r.Rewrapped+n
		w.rewrapped += n
		return s.cfg.Store.SaveKEKRotation(ctx, r)
	})
	if err != nil {
		return err
	}
	resealed, unreadable, err := s.resealSecrets(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	w.resealed += resealed
	r.Resealed += resealed
	r.Cursor, r.Passes, r.PassDoneAt, r.Problem = "", 1, &now, problems.String(unreadable)
	return s.cfg.Store.SaveKEKRotation(ctx, r)
}

// resealSecrets re-seals the staff secrets and the queued jobs under the
// primary KEK. unreadable counts staff secrets only: a queued job that
// cannot be opened is dropped by the queue's worker and is not a problem
// to report.
func (s *Service) resealSecrets(ctx context.Context) (resealed, unreadable int64, err error) {
	resealed, unreadable, err = s.cfg.Staff.ResealSecrets(ctx)
	if err != nil || s.cfg.Queue == nil {
		return resealed, unreadable, err
	}
	jobs, lost, err := s.cfg.Queue.Reseal(ctx)
	if lost > 0 {
		s.cfg.Logger.Warn("outbound jobs sealed under a key-encryption key no longer in the keyring", "jobs", lost)
	}
	return resealed + jobs, unreadable, err
}

// problems counts the accounts a pass could not move.
type problems struct {
	conflicts  []string // a blind index another account holds
	unreadable int64    // wrapped under a KEK that is gone, or damaged
}

// blocking reports whether the old KEKs must be kept: an account whose
// index conflicts is still under one of them. An unreadable key is
// unreadable with or without them.
func (p problems) blocking() bool { return len(p.conflicts) > 0 }

// String describes the problems, with unreadable staff secrets; "" if
// none.
func (p problems) String(staffUnreadable int64) string {
	var parts []string
	if n := len(p.conflicts); n > 0 {
		ids := p.conflicts[:min(n, 5)]
		parts = append(parts, fmt.Sprintf("%d account(s) share an email or mobile number with another account and cannot be re-indexed (%s); "+
			"the old key-encryption key is kept until this is resolved", n, strings.Join(ids, ", ")))
	}
	if p.unreadable > 0 {
		parts = append(parts, fmt.Sprintf("%d account key(s) cannot be opened with any key in the keyring and stay unreadable", p.unreadable))
	}
	if staffUnreadable > 0 {
		parts = append(parts, fmt.Sprintf("%d staff two-factor seed(s) cannot be opened; those staff must enrol again", staffUnreadable))
	}
	return strings.Join(parts, "; ")
}

// pass re-keys every account with id after from, in batches, calling
// save (if not nil) after each batch with the batch's last id and how
// many it moved. It returns how many accounts it moved.
func (s *Service) pass(ctx context.Context, from string, save func(cursor string, n int64) error) (int64, problems, error) {
	var total int64
	var p problems
	cursor := from
	for {
		if err := ctx.Err(); err != nil {
			return total, p, err
		}
		batch, err := s.cfg.Store.KeyedAccounts(ctx, cursor, s.cfg.Batch)
		if err != nil {
			return total, p, err
		}
		if len(batch) == 0 {
			return total, p, nil
		}
		var rks []store.AccountRekey
		for _, a := range batch {
			rk, changed, err := s.cfg.Accounts.Rekey(a)
			if err != nil {
				p.unreadable++
				continue
			}
			if changed {
				rks = append(rks, rk)
			}
		}
		n, err := s.apply(ctx, rks, &p)
		if err != nil {
			return total, p, err
		}
		total += n
		cursor = batch[len(batch)-1].ID
		if save != nil {
			if err := save(cursor, n); err != nil {
				return total, p, err
			}
		}
	}
}

// apply stores rks in one transaction, or one by one if an index
// conflicts, noting the accounts that conflict.
func (s *Service) apply(ctx context.Context, rks []store.AccountRekey, p *problems) (int64, error) {
	if len(rks) == 0 {
		return 0, nil
	}
	n, err := s.cfg.Store.RekeyAccounts(ctx, rks)
	if !errs.Is(err, errs.Conflict) {
		return int64(n), err
	}
	var total int64
	for _, rk := range rks {
		n, err := s.cfg.Store.RekeyAccounts(ctx, []store.AccountRekey{rk})
		switch {
		case errs.Is(err, errs.Conflict):
			p.conflicts = append(p.conflicts, rk.ID)
		case err != nil:
			return total, err
		default:
			total += int64(n)
		}
	}
	return total, nil
}

// finish destroys every KEK but r's target and ends r.
func (s *Service) finish(ctx context.Context, r *store.KEKRotation, w *work) error {
	for _, k := range s.cfg.Vault.KEKs() {
		if k.ID == r.Target {
			continue
		}
		if err := s.cfg.Vault.Destroy(k.ID); err != nil {
			return fmt.Errorf("destroy key-encryption key %d: %w", k.ID, err)
		}
		w.destroyed = append(w.destroyed, k.ID)
		r.Destroyed = append(r.Destroyed, k.ID)
	}
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	r.FinishedAt = &now
	if err := s.cfg.Store.SaveKEKRotation(ctx, r); err != nil {
		return err
	}
	s.cfg.Logger.Info("key-encryption key rotation finished", "rotation", r.ID, "kek", r.Target,
		"rewrapped", r.Rewrapped, "resealed", r.Resealed, "destroyed", len(r.Destroyed))
	return nil
}

// audit records what one call did; a scheduled call that did nothing is
// not recorded, a staff member's always is.
func (s *Service) audit(ctx context.Context, by staff.Principal, r *store.KEKRotation, started bool, w work, always bool) error {
	if r == nil || (!always && !started && w.total() == 0) {
		return nil
	}
	var parts []string
	if started {
		parts = append(parts, fmt.Sprintf("started rotation %s to KEK %d", r.ID, r.Target))
	} else {
		parts = append(parts, fmt.Sprintf("rotation %s to KEK %d", r.ID, r.Target))
	}
	parts = append(parts, fmt.Sprintf("re-wrapped %d account keys, re-sealed %d staff secrets and queued jobs", w.rewrapped, w.resealed))
	if len(w.destroyed) > 0 {
		ids := make([]string, len(w.destroyed))
		for i, id := range w.destroyed {
			ids[i] = fmt.Sprint(id)
		}
		parts = append(parts, "destroyed KEK "+strings.Join(ids, ", ")+"; rotation finished")
	}
	return s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActKEKRotate, auditSubject, strings.Join(parts, "; "))
}
