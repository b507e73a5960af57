package breaches

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// Update holds the changes to a breach record. Nil fields are unchanged;
// an empty string clears a text (but not the nature), and a nil People or
// Records pointer inside the update leaves the number as it is (numbers
// cannot be cleared once known, only corrected).
type Update struct {
	DetectedAt          *time.Time
	Nature              *string
	Categories          *[]string
	People              *int64
	Records             *int64
	Consequences        *string
	MeasuresTaken       *string
	MeasuresProposed    *string
	Risk                *string
	AuthorityNotifiedAt *time.Time
	AuthorityReference  *string
	// Status is "open" or "closed". Closing needs the authority notified
	// or the risk assessed as unlikely.
	Status *string
}

// checked is an Update validated, with the names of the fields it sets
// and, once applied, of those whose value it changed.
type checked struct {
	u       Update
	fields  []string
	changed []string
}

// check validates u at now. Errors are Invalid, naming the field.
func (s *Service) check(u Update, now time.Time) (*checked, error) {
	c := &checked{u: u}
	if u.DetectedAt != nil {
		t, err := past("detected_at", *u.DetectedAt, now)
		if err != nil {
			return nil, err
		}
		c.u.DetectedAt, c.fields = &t, append(c.fields, "detected_at")
	}
	for _, f := range []struct {
		name     string
		p        **string
		max      int
		required bool
	}{
		{"nature", &c.u.Nature, MaxText, true}, {"consequences", &c.u.Consequences, MaxText, false},
		{"measures_taken", &c.u.MeasuresTaken, MaxText, false}, {"measures_proposed", &c.u.MeasuresProposed, MaxText, false},
		{"authority_reference", &c.u.AuthorityReference, MaxReference, false},
	} {
		if *f.p == nil {
			continue
		}
		v, err := text(f.name, **f.p, f.max, f.required)
		if err != nil {
			return nil, err
		}
		*f.p, c.fields = &v, append(c.fields, f.name)
	}
	if u.Categories != nil {
		cats, err := s.checkCategories(*u.Categories)
		if err != nil {
			return nil, err
		}
		c.u.Categories, c.fields = &cats, append(c.fields, "categories")
	}
	for _, f := range []struct {
		name string
		n    *int64
	}{{"people", u.People}, {"records", u.Records}} {
		if f.n == nil {
			continue
		}
		if *f.n < 0 {
			return nil, errs.Field(errs.Invalid, f.name, "%s must be an approximate number, 0 or more", f.name)
		}
		c.fields = append(c.fields, f.name)
	}
	if u.Risk != nil {
		r := strings.ToLower(strings.TrimSpace(*u.Risk))
		if !validRisk(r) {
			return nil, errs.Field(errs.Invalid, "risk", "unknown risk %q: want one of %s", r, strings.Join(Risks(), ", "))
		}
		c.u.Risk, c.fields = &r, append(c.fields, "risk")
	}
	if u.AuthorityNotifiedAt != nil {
		t, err := past("authority_notified_at", *u.AuthorityNotifiedAt, now)
		if err != nil {
			return nil, err
		}
		c.u.AuthorityNotifiedAt, c.fields = &t, append(c.fields, "authority_notified_at")
	}
	if u.Status != nil {
		st := strings.ToLower(strings.TrimSpace(*u.Status))
		if st != store.BreachOpen && st != store.BreachClosed {
			return nil, errs.Field(errs.Invalid, "status", "status must be %s or %s", store.BreachOpen, store.BreachClosed)
		}
		c.u.Status, c.fields = &st, append(c.fields, "status")
	}
	if len(c.fields) == 0 {
		return nil, errs.E(errs.Invalid, "nothing to change: give at least one field")
	}
	return c, nil
}

// apply applies c to b at now and checks the rules that involve the
// record as a whole.
func (c *checked) apply(b *store.Breach, now time.Time) error {
	before := *b
	if err := c.set(b, now); err != nil {
		return err
	}
	c.changed = changedFields(&before, b)
	return nil
}

// changedFields names the fields whose values differ between a and b.
func changedFields(a, b *store.Breach) []string {
	var out []string
	for _, f := range []struct {
		name string
		same bool
	}{
		{"detected_at", a.DetectedAt.Equal(b.DetectedAt)}, {"nature", a.Nature == b.Nature},
		{"categories", slices.Equal(a.Categories, b.Categories)}, {"people", sameInt(a.People, b.People)},
		{"records", sameInt(a.Records, b.Records)}, {"consequences", a.Consequences == b.Consequences},
		{"measures_taken", a.MeasuresTaken == b.MeasuresTaken}, {"measures_proposed", a.MeasuresProposed == b.MeasuresProposed},
		{"risk", a.Risk == b.Risk}, {"authority_notified_at", sameTime(a.AuthorityNotifiedAt, b.AuthorityNotifiedAt)},
		{"authority_reference", a.AuthorityReference == b.AuthorityReference}, {"status", a.Status == b.Status},
	} {
		if !f.same {
			out = append(out, f.name)
		}
	}
	return out
}

func sameInt(a, b *int64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func sameTime(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}

// set applies c's values to b at now and checks the rules that involve
// the record as a whole.
func (c *checked) set(b *store.Breach, now time.Time) error {
	u := c.u
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	if u.DetectedAt != nil {
		b.DetectedAt = *u.DetectedAt
	}
	set(&b.Nature, u.Nature)
	set(&b.Consequences, u.Consequences)
	set(&b.MeasuresTaken, u.MeasuresTaken)
	set(&b.MeasuresProposed, u.MeasuresProposed)
	set(&b.AuthorityReference, u.AuthorityReference)
	set(&b.Risk, u.Risk)
	if u.Categories != nil {
		b.Categories = *u.Categories
	}
	if u.People != nil {
		b.People = u.People
	}
	if u.Records != nil {
		b.Records = u.Records
	}
	if u.AuthorityNotifiedAt != nil {
		b.AuthorityNotifiedAt = u.AuthorityNotifiedAt
	}
	if b.AuthorityNotifiedAt != nil && b.AuthorityNotifiedAt.Before(b.DetectedAt) {
		return errs.Field(errs.Invalid, "authority_notified_at", "the authority cannot have been notified (%s) before the breach was detected (%s)",
			b.AuthorityNotifiedAt.UTC().Format(time.RFC3339), b.DetectedAt.UTC().Format(time.RFC3339))
	}
	if u.Status != nil && *u.Status != b.Status {
		b.Status = *u.Status
		b.ClosedAt = nil
		if b.Status == store.BreachClosed {
			if b.AuthorityNotifiedAt == nil && b.Risk != RiskUnlikely {
				return errs.Field(errs.Precondition, "status", "a breach is closed once the supervisory authority was notified "+
					"(authority_notified_at), or once it is assessed as unlikely to result in a risk to people (risk %s)", RiskUnlikely)
			}
			b.ClosedAt = &now
		}
	}
	b.UpdatedAt = now
	return nil
}

// Update changes breach id as u says, for by, who must be allowed
// staff.ActBreachManage. Bad values are Invalid naming the field;
// closing a breach whose authority was not notified, unless its risk is
// assessed as unlikely, is Precondition (field "status"). The change is
// audited, naming the fields whose values changed but not the values.
func (s *Service) Update(ctx context.Context, by staff.Principal, id string, u Update) (*Breach, error) {
	if err := staff.Authorize(by, staff.ActBreachManage); err != nil {
		return nil, err
	}
	if err := breachID(id); err != nil {
		return nil, err
	}
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	c, err := s.check(u, now)
	if err != nil {
		return nil, err
	}
	b, err := s.cfg.Store.UpdateBreach(ctx, id, func(b *store.Breach) error { return c.apply(b, now) })
	if err != nil {
		return nil, err
	}
	detail := "updated " + strings.Join(c.changed, ", ")
	if len(c.changed) == 0 {
		detail = "saved without changes"
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActBreachManage, id, detail); err != nil {
		return nil, err
	}
	v := s.view(b)
	if err := s.withNotices(ctx, v); err != nil {
		return nil, err
	}
	return v, nil
}
