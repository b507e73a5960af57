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
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/vault"
	"github.com/pquerna/otp/totp"
)

// newService returns a staff service on st whose clock reads *now.
func newService(t *testing.T, st store.Store, now *time.Time) *staff.Service {
	t.Helper()
	clock := func() time.Time { return *now }
	hasher, err := password.NewHasher(password.DefaultParams(), 2, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(bytes.Repeat([]byte{1}, vault.KEKSize), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.New(audit.Config{Store: st, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := staff.New(staff.Config{Store: st, Hasher: hasher, Vault: v, Audit: log,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clock, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// login returns the principal of email, whose password is pw.
func login(t *testing.T, svc *staff.Service, email, pw string) staff.Principal {
	t.Helper()
	p, err := svc.Check(context.Background(), staff.Credentials{Email: email, Password: pw})
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return p
}

func TestTwoFactorLogin(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
			svc := newService(t, st, &now)
			if _, err := svc.Bootstrap(ctx, "boss@example.com", staff.RoleAdmin, "admin password 1"); err != nil {
				t.Fatal(err)
			}
			boss := login(t, svc, "boss@example.com", "admin password 1")
			id, err := svc.Add(ctx, boss, "po@example.com", staff.RolePrivacyOfficer, "officer password 1")
			if err != nil {
				t.Fatal(err)
			}
			creds := staff.Credentials{Email: "po@example.com", Password: "officer password 1"}
			p, err := svc.Check(ctx, creds)
			if err != nil || p.ID != id {
				t.Fatalf("before enrolling: got %+v, %v", p, err)
			}

			// A session opened before enrolling ends with it (finding 7 of
			// issue 10: enrolment ends the member's other sessions).
			before, _, _, err := svc.Login(ctx, creds)
			if err != nil {
				t.Fatal(err)
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
			if _, err := svc.Authenticate(ctx, before); err != nil {
				t.Fatalf("session before confirming: %v", err)
			}
			if err := svc.ConfirmTOTP(ctx, p, en.Secret, code()); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Authenticate(ctx, before); !errs.Is(err, errs.Unauthenticated) {
				t.Fatalf("session opened before enrolment: got %v, want Unauthenticated", err)
			}

			// The code used to confirm cannot be used again.
			withCode := creds
			withCode.Code = code()
			if _, err := svc.Check(ctx, withCode); !errs.Is(err, errs.Unauthenticated) {
				t.Fatalf("replayed confirmation code: got %v, want Unauthenticated", err)
			}
			now = now.Add(30 * time.Second)
			// Finding 3 of issue 10: a right password without a code, or
			// with a wrong one, answers exactly like a wrong password.
			wrong := "000000"
			if code() == wrong {
				wrong = "111111"
			}
			noCode, errNoCode := svc.Check(ctx, creds)
			_, errWrongCode := svc.Check(ctx, staff.Credentials{Email: creds.Email, Password: creds.Password, Code: wrong})
			_, errWrongPW := svc.Check(ctx, staff.Credentials{Email: creds.Email, Password: "wrong password 1"})
			_, errUnknown := svc.Check(ctx, staff.Credentials{Email: "nobody@example.com", Password: "wrong password 1", Code: wrong})
			for name, err := range map[string]error{"no code": errNoCode, "wrong code": errWrongCode, "unknown": errUnknown} {
				if err == nil || err.Error() != errWrongPW.Error() || errs.FieldOf(err) != "" || !errs.Is(err, errs.Unauthenticated) {
					t.Fatalf("%s: got %v (field %q), want exactly the wrong-password answer %v", name, err, errs.FieldOf(err), errWrongPW)
				}
			}
			if noCode.ID != "" {
				t.Fatal("a login without a code returned a principal")
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
			if err := svc.ResetTOTP(ctx, boss, "po@example.com"); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Check(ctx, creds); err != nil {
				t.Fatalf("after reset: %v", err)
			}
		})
	}
}

// TestBootstrapAndRecovery: whoever holds the database adds staff only
// while no enabled admin exists, whatever other staff exist; admins change
// roles and disable accounts, but never the last enabled admin, and
// disabling ends the member's sessions.
func TestBootstrapAndRecovery(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
			svc := newService(t, st, &now)
			// The old README's first command: a privacy officer, no admin.
			if _, err := svc.Bootstrap(ctx, "dpo@example.com", staff.RolePrivacyOfficer, "officer password 1"); err != nil {
				t.Fatal(err)
			}
			dpo := login(t, svc, "dpo@example.com", "officer password 1")
			if _, err := svc.Add(ctx, dpo, "x@example.com", staff.RoleAdmin, "some password 1"); !errs.Is(err, errs.Forbidden) {
				t.Fatalf("privacy officer adds an admin: got %v, want Forbidden", err)
			}
			bossID, err := svc.Bootstrap(ctx, "boss@example.com", staff.RoleAdmin, "admin password 1")
			if err != nil {
				t.Fatalf("bootstrap an admin after a privacy officer: %v", err)
			}
			if _, err := svc.Bootstrap(ctx, "second@example.com", staff.RoleAdmin, "admin password 2"); !errs.Is(err, errs.Unauthenticated) {
				t.Fatalf("bootstrap with an admin: got %v, want Unauthenticated", err)
			}
			if _, err := svc.Bootstrap(ctx, "bad", staff.RoleAdmin, "admin password 2"); !errs.Is(err, errs.Invalid) {
				t.Fatalf("bootstrap with a bad email: got %v, want Invalid", err)
			}
			es, err := st.AuditEntriesFor(ctx, bossID, 10)
			if err != nil || len(es) != 1 || es[0].Action != staff.ActStaffBootstrap || es[0].Actor != staff.OperatorID {
				t.Fatalf("bootstrap audit: got %+v, %v; want one staff.bootstrap entry by the operator", es, err)
			}

			boss := login(t, svc, "boss@example.com", "admin password 1")
			if _, err := svc.Disable(ctx, boss, "boss@example.com"); !errs.Is(err, errs.Conflict) {
				t.Fatalf("disable self: got %v, want Conflict", err)
			}
			if _, err := svc.SetRole(ctx, boss, bossID, staff.RoleLegal); !errs.Is(err, errs.Conflict) {
				t.Fatalf("demote the last admin: got %v, want Conflict", err)
			}
			if _, err := svc.SetRole(ctx, boss, "dpo@example.com", "root"); !errs.Is(err, errs.Invalid) || errs.FieldOf(err) != "role" {
				t.Fatalf("unknown role: got %v, want Invalid about the role", err)
			}
			if _, err := svc.SetRole(ctx, boss, "nobody@example.com", staff.RoleLegal); !errs.Is(err, errs.NotFound) {
				t.Fatalf("unknown member: got %v, want NotFound", err)
			}
			if _, err := svc.SetRole(ctx, dpo, "dpo@example.com", staff.RoleAdmin); !errs.Is(err, errs.Forbidden) {
				t.Fatalf("self-promotion: got %v, want Forbidden", err)
			}
			m, err := svc.SetRole(ctx, boss, "DPO@example.com", staff.RoleAdmin)
			if err != nil || m.Role != staff.RoleAdmin {
				t.Fatalf("promote the privacy officer: got %+v, %v", m, err)
			}
			// A role change applies to open sessions at once.
			tok, _, _, err := svc.Login(ctx, staff.Credentials{Email: "dpo@example.com", Password: "officer password 1"})
			if err != nil {
				t.Fatal(err)
			}
			if p, err := svc.Authenticate(ctx, tok); err != nil || p.Role != staff.RoleAdmin {
				t.Fatalf("session after promotion: got %+v, %v; want admin", p, err)
			}
			// With two admins, the first may be demoted, by the other.
			if _, err := svc.SetRole(ctx, boss, bossID, staff.RoleLegal); err != nil {
				t.Fatalf("demote one of two admins: %v", err)
			}
			dpo = login(t, svc, "dpo@example.com", "officer password 1")
			if _, err := svc.Disable(ctx, dpo, "boss@example.com"); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Authenticate(ctx, tok); err != nil {
				t.Fatalf("an untouched member's session ended: %v", err)
			}
			if _, err := svc.Check(ctx, staff.Credentials{Email: "boss@example.com", Password: "admin password 1"}); !errs.Is(err, errs.Unauthenticated) {
				t.Fatalf("disabled login: got %v, want Unauthenticated", err)
			}
			if _, err := svc.Enable(ctx, dpo, bossID); err != nil {
				t.Fatal(err)
			}
			members, err := svc.List(ctx, dpo)
			if err != nil || len(members) != 2 || members[0].Disabled || members[1].Disabled {
				t.Fatalf("list: got %+v, %v; want two enabled members", members, err)
			}
			// Disabling ends the member's sessions.
			if _, err := svc.SetRole(ctx, dpo, bossID, staff.RoleAdmin); err != nil {
				t.Fatal(err)
			}
			boss = login(t, svc, "boss@example.com", "admin password 1")
			if _, err := svc.Disable(ctx, boss, "dpo@example.com"); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Authenticate(ctx, tok); !errs.Is(err, errs.Unauthenticated) {
				t.Fatalf("disabled member's session: got %v, want Unauthenticated", err)
			}
		})
	}
}

// TestActionsFollowTheMatrix: what a principal is told it may do is
// exactly what Authorize lets it do.
func TestActionsFollowTheMatrix(t *testing.T) {
	now := time.Now()
	svc := newService(t, storetest.SQLite(t, storetest.DefaultPool()), &now)
	if got := svc.Actions(staff.Principal{Role: staff.RoleAdmin}); got != nil {
		t.Fatalf("actions of nobody: got %v, want none", got)
	}
	for _, role := range append(staff.Roles(), staff.RoleSystem) {
		p := staff.Principal{ID: "stf_x", Role: role}
		acts := svc.Actions(p)
		if len(acts) == 0 {
			t.Errorf("%s: no actions", role)
		}
		for _, a := range acts {
			if !svc.Allowed(p, a) || staff.Authorize(p, a) != nil {
				t.Errorf("%s: listed %s but may not take it", role, a)
			}
		}
	}
	if !staff.System().IsSystem() || (staff.Principal{ID: staff.SystemID, Role: staff.RoleAdmin}).IsSystem() {
		t.Fatal("IsSystem does not tell the system principal apart")
	}
	if staff.ValidRole(staff.RoleSystem) {
		t.Fatal("a staff account may take the system role")
	}
}
