package notices_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/notices"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// recorder is a notifier that records the accounts it was given.
type recorder struct{ to []string }

func (r *recorder) Send(_ context.Context, m notify.Message) error {
	r.to = append(r.to, m.Account)
	return nil
}

// TestRestrictionAndObjection: an announcement reaches only accounts
// that neither restricted nor objected (inbox and email, and progress
// counts only those); a breach notice reaches all; a listed announcement
// naming an objecting account is refused before anything is saved.
func TestRestrictionAndObjection(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ctx := t.Context()
			flags := map[string]store.Flags{"acc_p0": {}, "acc_p1": {Objected: true}, "acc_p2": {Restricted: true}, "acc_p3": {}}
			for id, f := range flags {
				if err := st.CreateAccount(ctx, &store.Account{ID: id, EmailIndex: []byte("e" + id), MobileIndex: []byte("m" + id),
					PasswordHash: "x", Status: store.StatusActive, CreatedAt: time.Unix(0, 0)}); err != nil {
					t.Fatal(err)
				}
				if err := st.SetFlags(ctx, id, f); err != nil {
					t.Fatal(err)
				}
			}
			rec := &recorder{}
			s, err := notices.New(notices.Config{Store: st, Notifier: rec, Contacts: contacts, Logger: storetest.Logger(t),
				Clock: time.Now, Rand: rand.Reader, Flags: st})
			if err != nil {
				t.Fatal(err)
			}
			send := func(kind string) notices.Progress {
				t.Helper()
				rec.to = nil
				run, err := s.NewRun(kind, "Subject", "Body", "", true)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Create(ctx, run); err != nil {
					t.Fatal(err)
				}
				p, err := s.Run(ctx, run.ID, nil)
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			p := send("announcement")
			if p.Accounts != 2 || p.Posted != 2 || p.Sent != 2 || len(rec.to) != 2 {
				t.Fatalf("announcement: progress %+v, emailed %v; want the 2 accounts without flags", p, rec.to)
			}
			for _, id := range rec.to {
				if id != "acc_p0" && id != "acc_p3" {
					t.Fatalf("announcement emailed to %s", id)
				}
			}
			if p := send("breach-notice"); p.Accounts != 4 || p.Sent != 4 {
				t.Fatalf("breach notice: progress %+v, want all 4", p)
			}
			run, err := s.NewRun("announcement", "Subject", "Body", "", false)
			if err != nil {
				t.Fatal(err)
			}
			err = s.CreateListed(ctx, run, []string{"acc_p0", "acc_p1"})
			if !errs.Is(err, errs.Forbidden) || errs.FieldOf(err) != "accounts" {
				t.Fatalf("listed announcement to an objecting account: got %v, want Forbidden on accounts", err)
			}
			if _, err := st.NoticeRun(ctx, run.ID); !errs.Is(err, errs.NotFound) {
				t.Fatalf("refused listed run was saved: %v", err)
			}
			legal, err := s.NewRun("breach-notice", "Subject", "Body", "brc_1", false)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.CreateListed(ctx, legal, []string{"acc_p1", "acc_p2"}); err != nil {
				t.Fatalf("listed breach notice: %v", err)
			}
		})
	}
}
