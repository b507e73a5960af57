package inbox_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/acctkey"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/inbox"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/vault"
)

// TestPostConsultsProcessingFlags: with Flags set, a message whose
// purpose an account's restriction or objection stops is refused and
// not posted; service messages and legal notices are posted.
func TestPostConsultsProcessingFlags(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ctx := t.Context()
			flags := map[string]store.Flags{"acc_ib0": {}, "acc_ib1": {Objected: true}, "acc_ib2": {Restricted: true}}
			kek := make([]byte, vault.KEKSize)
			if _, err := rand.Read(kek); err != nil {
				t.Fatal(err)
			}
			v, err := vault.New(kek, nil)
			if err != nil {
				t.Fatal(err)
			}
			for id, f := range flags {
				dk, wrapped, err := v.NewDataKey(id)
				if err != nil {
					t.Fatal(err)
				}
				dk.Destroy()
				if err := st.CreateAccount(ctx, &store.Account{ID: id, EmailIndex: []byte("e" + id), MobileIndex: []byte("m" + id),
					WrappedKey: wrapped, PasswordHash: "x", Status: store.StatusActive, CreatedAt: time.Now()}); err != nil {
					t.Fatal(err)
				}
				if err := st.SetFlags(ctx, id, f); err != nil {
					t.Fatal(err)
				}
			}
			box, err := inbox.New(inbox.Config{Store: st, Keys: acctkey.New(v, st), Clock: time.Now, Rand: rand.Reader, Flags: st})
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				account, kind string
				want          errs.Code
			}{
				{"acc_ib0", "announcement", ""},
				{"acc_ib1", "announcement", errs.Forbidden},
				{"acc_ib2", "announcement", errs.Forbidden},
				{"acc_ib1", "privacy-completed", ""},
				{"acc_ib2", "disclosure-notice", ""},
				{"acc_nope", "privacy-completed", errs.NotFound},
			} {
				before, _, _ := st.Messages(ctx, tc.account, 10)
				err := box.Post(ctx, tc.account, tc.kind, "Subject", "Body")
				if got := errs.CodeOf(err); got != tc.want {
					t.Errorf("%s %s: got %v, want code %q", tc.account, tc.kind, err, tc.want)
				}
				after, _, _ := st.Messages(ctx, tc.account, 10)
				if posted := len(after) > len(before); posted != (tc.want == "") {
					t.Errorf("%s %s: posted = %v", tc.account, tc.kind, posted)
				}
			}
		})
	}
}
