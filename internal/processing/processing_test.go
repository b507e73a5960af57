package processing_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/nitronet/nitronet/internal/breaches"
	"github.com/nitronet/nitronet/internal/disclosures"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/policy"
	"github.com/nitronet/nitronet/internal/processing"
	"github.com/nitronet/nitronet/internal/store"
)

var (
	none       = store.Flags{}
	objected   = store.Flags{Objected: true}
	restricted = store.Flags{Restricted: true}
	both       = store.Flags{Restricted: true, Objected: true}
)

func TestAllowed(t *testing.T) {
	type row struct {
		p                      processing.Purpose
		none, objected, restrd bool
	}
	for _, r := range []row{
		{processing.Storage, true, true, true},
		{processing.Service, true, true, true},
		{processing.ServiceNotice, true, true, true},
		{processing.LegalNotice, true, true, true},
		{processing.Announcement, true, false, false},
		{processing.Statistics, true, false, false},
		{processing.Purpose("research"), true, true, false}, // unknown: a restriction stops it
	} {
		if got := processing.Allowed(none, r.p); got != r.none {
			t.Errorf("Allowed(none, %s) = %v, want %v", r.p, got, r.none)
		}
		if got := processing.Allowed(objected, r.p); got != r.objected {
			t.Errorf("Allowed(objected, %s) = %v, want %v", r.p, got, r.objected)
		}
		if got := processing.Allowed(restricted, r.p); got != r.restrd {
			t.Errorf("Allowed(restricted, %s) = %v, want %v", r.p, got, r.restrd)
		}
		if got := processing.Allowed(both, r.p); got != (r.objected && r.restrd) {
			t.Errorf("Allowed(both, %s) = %v, want %v", r.p, got, r.objected && r.restrd)
		}
	}
}

func TestExcluding(t *testing.T) {
	for _, p := range processing.Purposes() {
		x := processing.Excluding(p)
		// An account is excluded by the query exactly when Allowed says no.
		for _, f := range []store.Flags{none, objected, restricted, both} {
			excluded := (x.Restricted && f.Restricted) || (x.Objected && f.Objected)
			if excluded == processing.Allowed(f, p) {
				t.Errorf("Excluding(%s) = %+v disagrees with Allowed(%+v)", p, x, f)
			}
		}
	}
	if x := processing.Excluding(processing.Statistics); !x.Restricted || !x.Objected {
		t.Errorf("Excluding(statistics) = %+v, want both flags", x)
	}
	if x := processing.Excluding(processing.LegalNotice); x.Restricted || x.Objected {
		t.Errorf("Excluding(legal-notice) = %+v, want none", x)
	}
}

func TestForMessage(t *testing.T) {
	for kind, want := range map[string]processing.Purpose{
		policy.KindAnnouncement: processing.Announcement,
		policy.KindPolicyChange: processing.LegalNotice,
		breaches.NoticeKind:     processing.LegalNotice,
		disclosures.NoticeKind:  processing.LegalNotice,
		"verify-code":           processing.ServiceNotice,
		"privacy-code":          processing.ServiceNotice,
		"password-reset":        processing.ServiceNotice,
		"contact-changed":       processing.ServiceNotice,
		"privacy-erasure":       processing.ServiceNotice,
		"privacy-extended":      processing.ServiceNotice,
		"newsletter":            processing.Announcement, // unclassified: stopped by an objection
	} {
		if got := processing.ForMessage(kind); got != want {
			t.Errorf("ForMessage(%q) = %s, want %s", kind, got, want)
		}
	}
}

func TestStateOf(t *testing.T) {
	s := processing.StateOf(objected)
	if !s.Objected || s.Restricted || !slices.Equal(s.Stopped, []processing.Purpose{processing.Announcement, processing.Statistics}) ||
		!slices.Contains(s.Continues, processing.LegalNotice) || s.Effect == "" {
		t.Errorf("StateOf(objected) = %+v", s)
	}
	if s := processing.StateOf(none); len(s.Stopped) != 0 || len(s.Continues) != len(processing.Purposes()) {
		t.Errorf("StateOf(none) = %+v, want nothing stopped", s)
	}
	if a, b := processing.StateOf(restricted).Effect, processing.StateOf(objected).Effect; a == b {
		t.Errorf("restriction and objection have the same effect text %q", a)
	}
}

// flagMap is a FlagReader over fixed flags; unknown accounts are NotFound.
type flagMap map[string]store.Flags

func (m flagMap) AccountFlags(_ context.Context, id string) (store.Flags, error) {
	if id == "acc_broken" {
		return store.Flags{}, errs.E(errs.Unavailable, "database down")
	}
	f, ok := m[id]
	if !ok {
		return store.Flags{}, errs.E(errs.NotFound, "no account")
	}
	return f, nil
}

// sent records what reached the processor.
type sent []notify.Message

func (s *sent) Send(_ context.Context, m notify.Message) error { *s = append(*s, m); return nil }

func TestGuard(t *testing.T) {
	flags := flagMap{"acc_none": none, "acc_obj": objected, "acc_res": restricted}
	var out sent
	g := processing.Guard(&out, flags, slog.New(slog.DiscardHandler))
	tests := []struct {
		account, kind string
		want          errs.Code
	}{
		{"acc_none", policy.KindAnnouncement, ""},
		{"acc_obj", policy.KindAnnouncement, errs.Forbidden},
		{"acc_res", policy.KindAnnouncement, errs.Forbidden},
		{"acc_obj", policy.KindPolicyChange, ""},
		{"acc_res", breaches.NoticeKind, ""},
		{"acc_res", "login-code", ""},
		{"acc_obj", "privacy-completed", ""},
		{"", policy.KindAnnouncement, ""},   // names no account
		{"acc_gone", "privacy-erasure", ""}, // purged: service notices only
		{"acc_gone", policy.KindAnnouncement, errs.Forbidden},
		{"acc_broken", "login-code", errs.Unavailable},
	}
	for _, tt := range tests {
		before := len(out)
		err := g.Send(t.Context(), notify.Message{Channel: notify.Email, To: "a@example.com", Kind: tt.kind, Account: tt.account})
		if got := errs.CodeOf(err); got != tt.want {
			t.Errorf("%s %s: got %v, want code %q", tt.account, tt.kind, err, tt.want)
		}
		if passed := len(out) > before; passed != (tt.want == "") {
			t.Errorf("%s %s: handed to the processor = %v, want %v", tt.account, tt.kind, passed, tt.want == "")
		}
	}
}
