package staff_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/audit"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/password"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/vault"
	"github.com/pquerna/otp/totp"
)

func TestTwoFactorLogin(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			hasher, err := password.NewHasher(password.DefaultParams(), 2, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			v, err := vault.New(bytes.Repeat([]byte{1}, vault.KEKSize), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := staff.New(staff.Config{Store: st, Hasher: hasher, Vault: v, Audit: audit.New(st, clock),
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock, Rand: rand.Reader})
			if err != nil {
				t.Fatal(err)
			}
			id, err := svc.Add(ctx, staff.Operator(), "po@example.com", staff.RolePrivacyOfficer, "officer password 1")
			if err != nil {
				t.Fatal(err)
			}
			creds := staff.Credentials{Email: "po@example.com", Password: "officer password 1"}
			p, err := svc.Check(ctx, creds)
			if err != nil || p.ID != id {
				t.Fatalf("before enrolling: got %+v, %v", p, err)
			}

			en, err := svc.BeginTOTP(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			code := func() string {
				c, err := totp.GenerateCode(en.Secret, now)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			if err := svc.ConfirmTOTP(ctx, p, en.Secret, "000000"); !errs.Is(err, errs.Unauthenticated) && code() != "000000" {
				t.Fatalf("confirm with a wrong code: got %v, want Unauthenticated", err)
			}
			// Not enrolled until confirmed: logins still need no code.
			if _, err := svc.Check(ctx, creds); err != nil {
				t.Fatalf("after an unconfirmed enrollment: %v", err)
			}
			if err := svc.ConfirmTOTP(ctx, p, en.Secret, code()); err != nil {
				t.Fatal(err)
			}

			// The code used to confirm cannot be used again.
			withCode := creds
			withCode.Code = code()
			if _, err := svc.Check(ctx, withCode); !errs.Is(err, errs.Unauthenticated) {
				t.Fatalf("replayed confirmation code: got %v, want Unauthenticated", err)
			}
			now = now.Add(30 * time.Second)
			if _, err := svc.Check(ctx, creds); !errs.Is(err, errs.Precondition) {
				t.Fatalf("no code: got %v, want Precondition (code required)", err)
			}
			withCode.Code = code()
			if _, err := svc.Check(ctx, withCode); err != nil {
				t.Fatalf("fresh code: %v", err)
			}
			if _, err := svc.Check(ctx, withCode); !errs.Is(err, errs.Unauthenticated) {
				t.Fatalf("replayed code: got %v, want Unauthenticated", err)
			}
			wrongPW := withCode
			wrongPW.Password = "wrong password 1"
			now = now.Add(30 * time.Second)
			wrongPW.Code = code()
			if _, err := svc.Check(ctx, wrongPW); !errs.Is(err, errs.Unauthenticated) {
				t.Fatalf("wrong password with a right code: got %v, want Unauthenticated", err)
			}
			// A code two steps old is outside the allowed clock skew.
			older, _ := totp.GenerateCode(en.Secret, now.Add(-60*time.Second))
			if _, err := svc.Check(ctx, staff.Credentials{Email: creds.Email, Password: creds.Password, Code: older}); err == nil && older != code() {
				t.Fatal("a code two steps old was accepted")
			}
			// The seed is sealed at rest.
			row, err := st.StaffByID(ctx, id)
			if err != nil || row.TOTPSealed == nil || bytes.Contains(row.TOTPSealed, []byte(en.Secret)) {
				t.Fatalf("stored seed: got %x, %v; want it sealed", row.TOTPSealed, err)
			}

			// Support may not reset it; an admin may, and then no code is needed.
			if err := svc.ResetTOTP(ctx, staff.Principal{ID: "stf_s", Role: staff.RoleSupport}, id); !errs.Is(err, errs.Forbidden) {
				t.Fatalf("support reset: got %v, want Forbidden", err)
			}
			if err := svc.ResetTOTP(ctx, staff.Operator(), id); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Check(ctx, creds); err != nil {
				t.Fatalf("after reset: %v", err)
			}
		})
	}
}
