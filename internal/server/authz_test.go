package server_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/acctkey"
	"github.com/nitronet/nitronet/internal/jobs"

	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/breaches"
	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/deadline"
	"github.com/nitronet/nitronet/internal/disclosures"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/secret"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/stats"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/transparency"
	"github.com/nitronet/nitronet/internal/wgkey"
	"github.com/pquerna/otp/totp"
)

// staffCall is one staff action taken through a service method, called
// directly (no front end in between).
type staffCall struct {
	name string
	// action is the staff action the call needs.
	action string
	// methods are the service methods ("Type.Method" of the value's
	// type, as reflect names it) the call covers.
	methods []string
	// setup makes what the call acts on, fresh for every principal; it
	// may be nil. Whatever it records in the audit log is not counted.
	setup func(t *testing.T, f *authzFixture) any
	// act takes the action as p on what setup made.
	act func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error
}

// authzFixture is a server with one staff member per role and a user
// account.
type authzFixture struct {
	e       *env
	st      store.Store
	members map[string]staff.Principal // by role
	account string
	n       int
}

// uniq returns a new number, for unique names.
func (f *authzFixture) uniq() int { f.n++; return f.n }

// signup creates a user account and returns its id.
func (f *authzFixture) signup(t *testing.T) string {
	t.Helper()
	n := f.uniq()
	id, err := f.e.srv.Accounts.Signup(context.Background(), fmt.Sprintf("authz%d@example.com", n),
		fmt.Sprintf("+4479111%05d", 20000+n), "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// verifiedSignup creates a user account with both contacts verified and
// returns its id, email and mobile.
func (f *authzFixture) verifiedSignup(t *testing.T) (string, string, string) {
	t.Helper()
	n := f.uniq()
	email, mobile := fmt.Sprintf("authzv%d@example.com", n), fmt.Sprintf("+4479112%05d", 30000+n)
	ctx := context.Background()
	id, err := f.e.srv.Accounts.Signup(ctx, email, mobile, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	e := f.e.with(t)
	for _, c := range []struct {
		ch store.Channel
		to string
	}{{store.Email, email}, {store.Mobile, mobile}} {
		if err := f.e.srv.Accounts.Verify(ctx, id, c.ch, e.code(c.to)); err != nil {
			t.Fatal(err)
		}
	}
	return id, email, mobile
}

// outsideRequest is a request recorded by staff from outside the app,
// with the identity-proof codes sent for it.
type outsideRequest struct{ id, emailCode, mobileCode string }

// outside records an erasure received by phone for a verified account.
func (f *authzFixture) outside(t *testing.T) outsideRequest {
	t.Helper()
	_, email, mobile := f.verifiedSignup(t)
	r, err := f.e.srv.Privacy.StaffAdd(context.Background(), f.members[staff.RoleSupport],
		privacy.Intake{Type: store.RequestErasure, Email: email, Channel: store.ChannelPhone})
	if err != nil {
		t.Fatal(err)
	}
	e := f.e.with(t)
	code := func(to string) string { return codeRE.FindStringSubmatch(e.lastMessage("privacy-code", to))[1] }
	return outsideRequest{r.ID, code(email), code(mobile)}
}

// breach opens a breach record with the content a notice needs.
func (f *authzFixture) breach(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	po := f.members[staff.RolePrivacyOfficer]
	b, err := f.e.srv.Breaches.Add(ctx, po, time.Now().Add(-2*time.Hour), "A backup disk was lost in transit.")
	if err != nil {
		t.Fatal(err)
	}
	cons, meas := "Little: the disk is encrypted.", "The backup key was rotated."
	if _, err := f.e.srv.Breaches.Update(ctx, po, b.ID, breaches.Update{Consequences: &cons, MeasuresTaken: &meas}); err != nil {
		t.Fatal(err)
	}
	return b.ID
}

// request stores a privacy request of typ in status for account.
func (f *authzFixture) request(t *testing.T, account, typ, status string, confirmed bool) string {
	t.Helper()
	id, err := ident.New(rand.Reader, "prq")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	r := &store.PrivacyRequest{ID: id, AccountID: account, Type: typ, Status: status, ReceivedAt: now,
		DueAt: deadline.Due(now, deadline.Months)}
	if status == store.RequestVerified {
		r.VerifiedAt = &now
	}
	if confirmed {
		r.ConfirmedAt = &now
	}
	// An account's request text is stored sealed under its key (an
	// empty text, as the service writes for a request with no details).
	key, err := f.e.srv.Keys.Open(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Close()
	if r.Sealed, err = key.Seal(acctkey.RequestText, id, "{}"); err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreatePrivacyRequest(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return id
}

// member stores a staff account with role (disabled if disabled) and
// returns its id.
func (f *authzFixture) member(t *testing.T, role string, disabled bool) string {
	t.Helper()
	n := f.uniq()
	id, err := ident.New(rand.Reader, "stf")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreateStaff(context.Background(), &store.Staff{ID: id, Email: fmt.Sprintf("member%d@staff.example", n),
		Role: role, PasswordHash: "unused", CreatedAt: time.Now(), Disabled: disabled}); err != nil {
		t.Fatal(err)
	}
	return id
}

// disclosure returns a valid ledger entry about accounts.
func (f *authzFixture) disclosure(accounts ...string) disclosures.Input {
	return disclosures.Input{Reference: fmt.Sprintf("REF-%d", f.uniq()), Authority: "Amtsgericht Berlin", Jurisdiction: "DE",
		LegalBasis: "§ 100j StPO", Type: "court-order", ReceivedAt: time.Now().Add(-48 * time.Hour),
		ScopeRequested: "subscriber data", Decision: "complied", Categories: []string{inventory.IDEmail},
		Fields: []string{"email address"}, Accounts: accounts}
}

// staffCalls is every staff action of every service, each through the
// method that takes it.
func staffCalls() []staffCall {
	ctx := context.Background()
	pw := "member password 1"
	return []staffCall{
		// Staff accounts.
		{name: "add staff", action: staff.ActStaffManage, methods: []string{"staff.Service.Add"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Staff.Add(ctx, p, fmt.Sprintf("new%d@staff.example", f.uniq()), staff.RoleSupport, pw)
				return err
			}},
		{name: "list staff", action: staff.ActStaffManage, methods: []string{"staff.Service.List"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Staff.List(ctx, p)
				return err
			}},
		{name: "change a role", action: staff.ActStaffManage, methods: []string{"staff.Service.SetRole"},
			setup: func(t *testing.T, f *authzFixture) any { return f.member(t, staff.RoleSupport, false) },
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Staff.SetRole(ctx, p, x.(string), staff.RoleLegal)
				return err
			}},
		{name: "disable staff", action: staff.ActStaffManage, methods: []string{"staff.Service.Disable"},
			setup: func(t *testing.T, f *authzFixture) any { return f.member(t, staff.RoleSupport, false) },
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Staff.Disable(ctx, p, x.(string))
				return err
			}},
		{name: "enable staff", action: staff.ActStaffManage, methods: []string{"staff.Service.Enable"},
			setup: func(t *testing.T, f *authzFixture) any { return f.member(t, staff.RoleSupport, true) },
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Staff.Enable(ctx, p, x.(string))
				return err
			}},
		{name: "reset a second factor", action: staff.ActStaffManage, methods: []string{"staff.Service.ResetTOTP"},
			setup: func(t *testing.T, f *authzFixture) any { return f.member(t, staff.RoleSupport, false) },
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				return f.e.srv.Staff.ResetTOTP(ctx, p, x.(string))
			}},
		{name: "enroll own second factor", action: staff.ActStaffTOTP, methods: []string{"staff.Service.BeginTOTP", "staff.Service.ConfirmTOTP"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				en, err := f.e.srv.Staff.BeginTOTP(ctx, p)
				if err != nil {
					return err
				}
				code, err := totp.GenerateCode(en.Secret, time.Now())
				if err != nil {
					return err
				}
				return f.e.srv.Staff.ConfirmTOTP(ctx, p, en.Secret, code)
			}},

		// The audit log itself.
		{name: "read the audit log", action: staff.ActAuditView, methods: []string{"audit.Log.Read"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Audit.Read(ctx, p, -1, 10)
				return err
			}},
		{name: "read entries about a subject", action: staff.ActAuditView, methods: []string{"audit.Log.About"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Audit.About(ctx, p, f.account, 10)
				return err
			}},
		{name: "verify the audit log", action: staff.ActAuditView, methods: []string{"audit.Log.Verify"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Audit.Verify(ctx, p)
				return err
			}},
		{name: "read the audit head", action: staff.ActAuditView, methods: []string{"audit.Log.Head"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Audit.Head(ctx, p)
				return err
			}},
		{name: "prove the audit log against a head", action: staff.ActAuditView, methods: []string{"audit.Log.VerifyHead"},
			setup: func(t *testing.T, f *authzFixture) any {
				h, err := f.e.srv.Audit.Checkpoint(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return h
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Audit.VerifyHead(ctx, p, x.(auditchain.Checkpoint))
				return err
			}},

		// Retention and records.
		{name: "sweep", action: staff.ActRetentionRun, methods: []string{"retention.Sweeper.RunNow"},
			setup: func(t *testing.T, f *authzFixture) any {
				// An expired login token, so that even the system's sweep
				// has something to delete (and so to record).
				_, hash, err := secret.NewToken(rand.Reader, "nnt")
				if err != nil {
					t.Fatal(err)
				}
				old := time.Now().Add(-400 * 24 * time.Hour)
				if err := f.st.CreateToken(ctx, &store.Token{Hash: hash, AccountID: f.account, CreatedAt: old, ExpiresAt: old.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Retention.RunNow(ctx, p)
				return err
			}},
		{name: "retention rules", action: staff.ActRetentionView, methods: []string{"retention.Sweeper.Status"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, _, err := f.e.srv.Retention.Status(ctx, p)
				return err
			}},
		{name: "record of processing", action: staff.ActRecordsView, methods: []string{"records.Service.Record"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Records.Record(ctx, p)
				return err
			}},

		// Policy versions, announcements and notices.
		{name: "publish a policy version", action: staff.ActPolicyPublish, methods: []string{"policy.Service.Publish"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Policy.Publish(ctx, p, store.PolicyTerms, fmt.Sprintf("Terms, edition %d.", f.uniq()), false)
				return err
			}},
		{name: "announce", action: staff.ActAnnounce, methods: []string{"policy.Service.Announce"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Policy.Announce(ctx, p, "Maintenance", "The eu-west gateway moves on Monday.", false)
				return err
			}},
		{name: "list unfinished notices", action: staff.ActNoticeRun, methods: []string{"policy.Service.Notices"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Policy.Notices(ctx, p)
				return err
			}},
		{name: "run a notice", action: staff.ActNoticeRun, methods: []string{"policy.Service.RunNotice"},
			setup: func(t *testing.T, f *authzFixture) any {
				run, err := f.e.srv.Policy.Announce(ctx, f.members[staff.RoleAdmin], "Notice", "A notice to run.", false)
				if err != nil {
					t.Fatal(err)
				}
				return run.ID
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Policy.RunNotice(ctx, p, x.(string), nil)
				return err
			}},
		{name: "resume notices", action: staff.ActNoticeRun, methods: []string{"policy.Service.ResumeNotices"},
			setup: func(t *testing.T, f *authzFixture) any {
				if _, err := f.e.srv.Policy.Announce(ctx, f.members[staff.RoleAdmin], "Notice", "A notice left unfinished.", false); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Policy.ResumeNotices(ctx, p, nil)
				return err
			}},

		// Privacy requests.
		{name: "list requests", action: staff.ActPrivacyView, methods: []string{"privacy.Service.StaffList"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Privacy.StaffList(ctx, p, false)
				return err
			}},
		{name: "show a request", action: staff.ActPrivacyView, methods: []string{"privacy.Service.StaffShow"},
			setup: func(t *testing.T, f *authzFixture) any {
				return f.request(t, f.account, store.RequestAccess, store.RequestPending, false)
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Privacy.StaffShow(ctx, p, x.(string))
				return err
			}},
		{name: "extend a request", action: staff.ActPrivacyExtend, methods: []string{"privacy.Service.Extend"},
			setup: func(t *testing.T, f *authzFixture) any {
				return f.request(t, f.account, store.RequestAccess, store.RequestPending, false)
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Privacy.Extend(ctx, p, x.(string), 1, "many systems to search")
				return err
			}},
		{name: "complete a request", action: staff.ActPrivacyComplete, methods: []string{"privacy.Service.Complete"},
			setup: func(t *testing.T, f *authzFixture) any {
				return f.request(t, f.account, store.RequestRectification, store.RequestVerified, false)
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Privacy.Complete(ctx, p, x.(string), "Corrected.")
				return err
			}},
		{name: "deny a request", action: staff.ActPrivacyDeny, methods: []string{"privacy.Service.Deny"},
			setup: func(t *testing.T, f *authzFixture) any {
				return f.request(t, f.account, store.RequestAccess, store.RequestPending, false)
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Privacy.Deny(ctx, p, x.(string), "manifestly unfounded")
				return err
			}},
		{name: "resume erasures", action: staff.ActErasureResume, methods: []string{"privacy.Service.ResumeErasures"},
			setup: func(t *testing.T, f *authzFixture) any {
				// An erasure confirmed but not carried out (a crash).
				return f.request(t, f.signup(t), store.RequestErasure, store.RequestVerified, true)
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Privacy.ResumeErasures(ctx, p)
				return err
			}},
		{name: "retry extension notices", action: staff.ActErasureResume, methods: []string{"privacy.Service.RetryExtensionNotices"},
			setup: func(t *testing.T, f *authzFixture) any {
				// An extension whose notice failed and is due a retry.
				id := f.request(t, f.signup(t), store.RequestAccess, store.RequestPending, false)
				past := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
				if _, err := f.st.UpdatePrivacyRequest(context.Background(), id, func(r *store.PrivacyRequest) error {
					r.ExtendedAt = &past
					r.ExtensionNotice = store.NoticeDelivery{Attempts: 1, Error: "unavailable", RetryAt: &past}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				return id
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Privacy.RetryExtensionNotices(ctx, p)
				return err
			}},
		{name: "read an account", action: staff.ActAccountView, methods: []string{"accounts.Service.StaffShow"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Accounts.StaffShow(ctx, p, f.account)
				return err
			}},
		{name: "view the account a request is about", action: staff.ActAccountView, methods: []string{"privacy.Service.StaffAccount"},
			setup: func(t *testing.T, f *authzFixture) any {
				return f.request(t, f.account, store.RequestRectification, store.RequestVerified, false)
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Privacy.StaffAccount(ctx, p, x.(string))
				return err
			}},
		{name: "correct a contact for a rectification", action: staff.ActPrivacyComplete, methods: []string{"privacy.Service.StaffCorrectContact"},
			setup: func(t *testing.T, f *authzFixture) any {
				id, _, _ := f.verifiedSignup(t)
				return f.request(t, id, store.RequestRectification, store.RequestVerified, false)
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				return f.e.srv.Privacy.StaffCorrectContact(ctx, p, x.(string), store.Email, fmt.Sprintf("fixed%d@example.com", f.uniq()))
			}},
		{name: "look an account up by email", action: staff.ActAccountView, methods: []string{"accounts.Service.StaffLookup"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Accounts.StaffLookup(ctx, p, store.Email, "authz1@example.com")
				return err
			}},

		// Requests from outside the app, and the recipients told.
		{name: "record a request received by post", action: staff.ActPrivacyRecord, methods: []string{"privacy.Service.StaffAdd"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Privacy.StaffAdd(ctx, p, privacy.Intake{Type: store.RequestAccess, Email: "nobody@example.com",
					Channel: store.ChannelPost, ReceivedAt: time.Now().Add(-72 * time.Hour), Check: privacy.CheckLetter})
				return err
			}},
		{name: "enter the codes read back", action: staff.ActPrivacyRecord, methods: []string{"privacy.Service.StaffVerify"},
			setup: func(t *testing.T, f *authzFixture) any { return f.outside(t) },
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				o := x.(outsideRequest)
				_, err := f.e.srv.Privacy.StaffVerify(ctx, p, o.id, o.emailCode, o.mobileCode)
				return err
			}},
		{name: "send new identity codes", action: staff.ActPrivacyRecord, methods: []string{"privacy.Service.StaffSendCodes"},
			setup: func(t *testing.T, f *authzFixture) any { return f.outside(t) },
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Privacy.StaffSendCodes(ctx, p, x.(outsideRequest).id)
				return err
			}},
		{name: "note a recipient told", action: staff.ActPrivacyComplete, methods: []string{"privacy.Service.NoteRecipient"},
			setup: func(t *testing.T, f *authzFixture) any {
				id := f.request(t, f.account, store.RequestRectification, store.RequestVerified, false)
				if err := f.st.MergeRequestRecipients(ctx, id, []store.RequestRecipient{{Processor: "SMTP relay",
					Categories: []string{inventory.IDEmail}, FirstAt: time.Now(), LastAt: time.Now()}}); err != nil {
					t.Fatal(err)
				}
				return id
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Privacy.NoteRecipient(ctx, p, x.(string), "SMTP relay", store.RecipientTold, "ticket 12")
				return err
			}},

		// The breach register.
		{name: "open a breach record", action: staff.ActBreachManage, methods: []string{"breaches.Service.Add"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Breaches.Add(ctx, p, time.Now().Add(-time.Hour), "A laptop was stolen.")
				return err
			}},
		{name: "update a breach record", action: staff.ActBreachManage, methods: []string{"breaches.Service.Update"},
			setup: func(t *testing.T, f *authzFixture) any { return f.breach(t) },
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				risk := breaches.RiskHigh
				_, err := f.e.srv.Breaches.Update(ctx, p, x.(string), breaches.Update{Risk: &risk})
				return err
			}},
		{name: "list breaches", action: staff.ActBreachView, methods: []string{"breaches.Service.List"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Breaches.List(ctx, p)
				return err
			}},
		{name: "show a breach", action: staff.ActBreachView, methods: []string{"breaches.Service.Get"},
			setup: func(t *testing.T, f *authzFixture) any { return f.breach(t) },
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Breaches.Get(ctx, p, x.(string))
				return err
			}},
		{name: "tell the people affected by a breach", action: staff.ActBreachNotify, methods: []string{"breaches.Service.Notify"},
			setup: func(t *testing.T, f *authzFixture) any { return f.breach(t) },
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Breaches.Notify(ctx, p, x.(string), breaches.Audience{Accounts: []string{f.account}}, false, nil)
				return err
			}},
		{name: "resume the notices of a breach", action: staff.ActBreachNotify, methods: []string{"breaches.Service.ResumeNotices"},
			setup: func(t *testing.T, f *authzFixture) any { return f.breach(t) },
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Breaches.ResumeNotices(ctx, p, x.(string), nil)
				return err
			}},

		// Legal holds.
		{name: "place a hold", action: staff.ActHoldManage, methods: []string{"holds.Service.Add"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Holds.Add(ctx, p, f.account, "case 42", nil)
				return err
			}},
		{name: "list holds", action: staff.ActHoldView, methods: []string{"holds.Service.List"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Holds.List(ctx, p, "", false)
				return err
			}},
		{name: "release a hold", action: staff.ActHoldManage, methods: []string{"holds.Service.Release"},
			setup: func(t *testing.T, f *authzFixture) any {
				h, err := f.e.srv.Holds.Add(ctx, f.members[staff.RoleLegal], f.account, "case 43", nil)
				if err != nil {
					t.Fatal(err)
				}
				return h.ID
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				return f.e.srv.Holds.Release(ctx, p, x.(string))
			}},

		// Disclosures and transparency.
		{name: "record a disclosure", action: staff.ActDisclosureManage, methods: []string{"disclosures.Service.Add"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Disclosures.Add(ctx, p, f.disclosure(f.account))
				return err
			}},
		{name: "list disclosures", action: staff.ActDisclosureView, methods: []string{"disclosures.Service.List"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Disclosures.List(ctx, p, time.Time{}, time.Time{})
				return err
			}},
		{name: "show a disclosure", action: staff.ActDisclosureView, methods: []string{"disclosures.Service.Get"},
			setup: func(t *testing.T, f *authzFixture) any {
				d, err := f.e.srv.Disclosures.Add(ctx, f.members[staff.RoleLegal], f.disclosure(f.account))
				if err != nil {
					t.Fatal(err)
				}
				return d.ID
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Disclosures.Get(ctx, p, x.(string))
				return err
			}},
		{name: "tell users of lapsed gags", action: staff.ActDisclosureNotify, methods: []string{"disclosures.Service.NotifyLapsedGags"},
			setup: func(t *testing.T, f *authzFixture) any {
				if _, err := f.e.srv.Disclosures.Add(ctx, f.members[staff.RoleLegal], f.disclosure(f.account)); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Disclosures.NotifyLapsedGags(ctx, p)
				return err
			}},
		{name: "sign a transparency report", action: staff.ActTransparency, methods: []string{"disclosures.Service.Transparency"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				key, err := f.e.srv.TransparencyKey("")
				if err != nil {
					return err
				}
				_, _, err = f.e.srv.Disclosures.Transparency(ctx, p, transparency.PeriodOf(time.Now().AddDate(0, -7, 0)), "No warrants.", key)
				return err
			}},

		// Processors and statistics.
		{name: "register a processor", action: staff.ActProcessorManage, methods: []string{"processors.Service.Add"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Processors.Add(ctx, p, fmt.Sprintf("Relay %d", f.uniq()), "mail", []string{inventory.IDEmail})
				return err
			}},
		{name: "list processors", action: staff.ActProcessorManage, methods: []string{"processors.Service.List"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Processors.List(ctx, p)
				return err
			}},
		{name: "remove a processor", action: staff.ActProcessorManage, methods: []string{"processors.Service.Remove"},
			setup: func(t *testing.T, f *authzFixture) any {
				pr, err := f.e.srv.Processors.Add(ctx, f.members[staff.RolePrivacyOfficer], fmt.Sprintf("Old relay %d", f.uniq()),
					"mail", []string{inventory.IDEmail})
				if err != nil {
					t.Fatal(err)
				}
				return pr.ID
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Processors.Remove(ctx, p, x.(string))
				return err
			}},
		{name: "usage statistics", action: staff.ActStatsView, methods: []string{"stats.Service.Usage"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Stats.Usage(ctx, p, stats.Options{From: time.Now().AddDate(0, 0, -7), To: time.Now()})
				return err
			}},
		{name: "usage statistics beyond the per-report limits", action: staff.ActStatsOverride, methods: []string{"stats.Service.Usage"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Stats.Usage(ctx, p, stats.Options{From: time.Now().AddDate(0, 0, -7), To: time.Now(),
					Epsilon: 0.1, MinGroup: 5, Override: "small-group check approved by the DPO"})
				return err
			}},
		{name: "statistics budget", action: staff.ActStatsView, methods: []string{"stats.Service.Budget"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Stats.Budget(ctx, p, "")
				return err
			}},

		// The key-encryption key.
		{name: "rotate the KEK", action: staff.ActKEKRotate, methods: []string{"rekey.Service.Rotate"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Rekey.Rotate(ctx, p)
				return err
			}},
		{name: "scheduled KEK rotation", action: staff.ActKEKRotate, methods: []string{"rekey.Service.Scheduled"},
			setup: func(t *testing.T, f *authzFixture) any { dueRotation(t, f); return nil },
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Rekey.Scheduled(ctx, p)
				return err
			}},
		{name: "keyring status", action: staff.ActKEKView, methods: []string{"rekey.Service.Status"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Rekey.Status(ctx, p)
				return err
			}},

		// Gateways.
		{name: "add a gateway", action: staff.ActGatewayManage, methods: []string{"gateways.Service.Add"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, _, err := f.e.srv.Gateways.Add(ctx, p, "eu-west", "198.18.0.1:51820")
				return err
			}},
		{name: "provision the in-process gateway", action: staff.ActGatewayManage, methods: []string{"gateways.Service.Provision"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				key, err := wgkey.Generate(rand.Reader)
				if err != nil {
					return err
				}
				_, err = f.e.srv.Gateways.Provision(ctx, p, "eu-central", "198.18.0.3:51820", key.Public())
				return err
			}},
		{name: "list gateways", action: staff.ActGatewayView, methods: []string{"gateways.Service.StaffList"},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, _ any) error {
				_, err := f.e.srv.Gateways.StaffList(ctx, p)
				return err
			}},
		{name: "remove a gateway", action: staff.ActGatewayManage, methods: []string{"gateways.Service.Remove"},
			setup: func(t *testing.T, f *authzFixture) any {
				g, _, err := f.e.srv.Gateways.Add(ctx, staff.System(), "us-east", "198.18.0.2:51820")
				if err != nil {
					t.Fatal(err)
				}
				return g.ID
			},
			act: func(ctx context.Context, f *authzFixture, p staff.Principal, x any) error {
				_, err := f.e.srv.Gateways.Remove(ctx, p, x.(string))
				return err
			}},
	}
}

// exemptMethods take a principal but are no staff action: they answer
// what the principal may do, for front ends to show.
var exemptMethods = []string{"staff.Service.Allowed", "staff.Service.Actions"}

// declaredActions returns the Act* constants of package staff, read from
// its source so that a new one cannot be missed.
func declaredActions(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "staff", "staff.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "Act") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("staff.%s is not a string literal", n.Name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out[n.Name] = v
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("found only %d staff actions in staff.go: %v", len(out), out)
	}
	return out
}

// staffMethods returns every exported method of the server's services
// that takes a staff.Principal: the staff-facing methods.
func staffMethods() []string {
	principal := reflect.TypeOf(staff.Principal{})
	st := reflect.TypeOf(server.Server{})
	var out []string
	for i := range st.NumField() {
		f := st.Field(i)
		if !f.IsExported() {
			continue
		}
		for m := range f.Type.NumMethod() {
			mt := f.Type.Method(m)
			for k := range mt.Type.NumIn() {
				if mt.Type.In(k) == principal {
					out = append(out, strings.TrimPrefix(f.Type.String(), "*")+"."+mt.Name)
					break
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestStaffCallsCoverEveryAction fails when a staff action or a
// staff-facing service method has no row in staffCalls.
func TestStaffCallsCoverEveryAction(t *testing.T) {
	calls := staffCalls()
	acted := map[string]bool{staff.ActStaffBootstrap: true} // TestStaffBootstrapIsTheOperators
	covered := map[string]bool{}
	for _, c := range calls {
		acted[c.action] = true
		for _, m := range c.methods {
			covered[m] = true
		}
	}
	declared := map[string]bool{}
	for name, a := range declaredActions(t) {
		declared[a] = true
		if !acted[a] {
			t.Errorf("staff.%s (%q) has no row in staffCalls: add the service call that takes it", name, a)
		}
	}
	for a := range acted {
		if !declared[a] {
			t.Errorf("staffCalls uses action %q, which package staff does not declare", a)
		}
	}
	methods := staffMethods()
	if len(methods) < 30 {
		t.Fatalf("found only %d staff-facing methods: %v", len(methods), methods)
	}
	for _, m := range methods {
		if !covered[m] && !slices.Contains(exemptMethods, m) {
			t.Errorf("%s takes a staff principal but has no row in staffCalls", m)
		}
	}
	for m := range covered {
		if !slices.Contains(methods, m) {
			t.Errorf("staffCalls names %s, which is not a staff-facing method of the server", m)
		}
	}
}

// dueRotation makes a scheduled KEK rotation due: it lets any rotation in
// progress finish (the fixture's settle time is a second) and dates the
// primary KEK back past the rotation period.
func dueRotation(t *testing.T, f *authzFixture) {
	t.Helper()
	ctx := context.Background()
	admin := f.members[staff.RoleAdmin]
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := f.e.srv.Rekey.Status(ctx, admin)
		if err != nil {
			t.Fatal(err)
		}
		if st.Current == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotation %+v does not finish", st.Current)
		}
		time.Sleep(100 * time.Millisecond) // the settle time is wall-clock time
		if _, err := f.e.srv.Rekey.Rotate(ctx, admin); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range f.e.srv.Vault.KEKs() {
		if k.Primary {
			old := time.Now().Add(-f.e.srv.Config.KEKRotation - time.Hour)
			if err := os.Chtimes(k.Path, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.e.srv.Vault.Refresh(); err != nil {
		t.Fatal(err)
	}
}

// principalCase is one principal the table is run as.
type principalCase struct {
	name string
	p    staff.Principal
}

// newAuthzFixture bootstraps an admin on e's server, has it add one staff
// member per other role, and signs up a user.
func newAuthzFixture(t *testing.T, e *env) (*authzFixture, []principalCase) {
	t.Helper()
	ctx := context.Background()
	f := &authzFixture{e: e, st: e.srv.Store, members: map[string]staff.Principal{}}
	const pw = "staff password 1"
	if _, err := e.srv.Staff.Bootstrap(ctx, "admin@staff.example", staff.RoleAdmin, pw); err != nil {
		t.Fatal(err)
	}
	login := func(email string) staff.Principal {
		p, err := e.srv.Staff.Check(ctx, staff.Credentials{Email: email, Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	admin := login("admin@staff.example")
	var cases []principalCase
	for _, role := range staff.Roles() {
		p := admin
		if role != staff.RoleAdmin {
			email := role + "@staff.example"
			if _, err := e.srv.Staff.Add(ctx, admin, email, role, pw); err != nil {
				t.Fatal(err)
			}
			p = login(email)
		}
		f.members[role] = p
		cases = append(cases, principalCase{role, p})
	}
	cases = append(cases, principalCase{"system", staff.System()}, principalCase{"nobody", staff.Principal{}})
	f.account = f.signup(t)
	return f, cases
}

// lastAuditSeq returns the newest audit entry's sequence number.
func lastAuditSeq(t *testing.T, st store.Store) int64 {
	t.Helper()
	var last int64
	for {
		es, err := st.AuditEntries(context.Background(), last, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return last
		}
		last = es[len(es)-1].Seq
	}
}

// TestStaffActionsAuthorisedByServices calls every staff action's service
// method directly as every role, the system and nobody: each is refused
// (Unauthenticated for nobody, Forbidden for a role without the action)
// or succeeds and is audited under the principal, exactly as the role
// matrix says.
func TestStaffActionsAuthorisedByServices(t *testing.T) {
	calls := staffCalls()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, b, nil, shortSettle)
			f, principals := newAuthzFixture(t, e)
			for _, c := range calls {
				for _, who := range principals {
					t.Run(c.name+"/"+who.name, func(t *testing.T) {
						var x any
						if c.setup != nil {
							x = c.setup(t, f)
						}
						before := lastAuditSeq(t, f.st)
						err := c.act(context.Background(), f, who.p, x)
						es, aerr := f.st.AuditEntries(context.Background(), before, 1000)
						if aerr != nil {
							t.Fatal(aerr)
						}
						recorded := false
						for _, en := range es {
							if en.Actor == who.p.ID && who.p.ID != "" {
								recorded = recorded || en.Action == c.action
								if en.Role != who.p.Role {
									t.Errorf("audit entry %+v: role %q, want %q", en, en.Role, who.p.Role)
								}
							}
						}
						switch {
						case who.p.ID == "":
							if !errs.Is(err, errs.Unauthenticated) {
								t.Fatalf("got %v, want Unauthenticated", err)
							}
						case !staff.Can(who.p.Role, c.action):
							if !errs.Is(err, errs.Forbidden) {
								t.Fatalf("got %v, want Forbidden (%s may not %s)", err, who.name, c.action)
							}
							if recorded {
								t.Fatalf("a refused call was recorded as done")
							}
						default:
							if err != nil {
								t.Fatalf("got %v, want success (%s may %s)", err, who.name, c.action)
							}
							if !recorded {
								t.Fatalf("no %s audit entry by %s after the call (got %+v)", c.action, who.p.ID, es)
							}
						}
					})
				}
			}
			// The chain is whole after all of it.
			if n, err := e.srv.Audit.Verify(context.Background(), f.members[staff.RoleAdmin]); err != nil || n == 0 {
				t.Fatalf("audit chain: %d entries, %v", n, err)
			}
		})
	}
}

// TestStaffBootstrapIsTheOperators: the bootstrap takes no principal; it
// works while no enabled admin exists, whatever other staff exist, and is
// audited as the operator's.
func TestStaffBootstrapIsTheOperators(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b, nil)
			ctx := context.Background()
			for _, r := range []struct{ email, role string }{
				{"dpo@staff.example", staff.RolePrivacyOfficer},
				{"legal@staff.example", staff.RoleLegal},
				{"admin@staff.example", staff.RoleAdmin},
			} {
				id, err := e.srv.Staff.Bootstrap(ctx, r.email, r.role, "staff password 1")
				if err != nil {
					t.Fatalf("bootstrap %s with no enabled admin: %v", r.role, err)
				}
				es, err := e.srv.Store.AuditEntriesFor(ctx, id, 10)
				if err != nil || len(es) != 1 || es[0].Action != staff.ActStaffBootstrap || es[0].Actor != staff.OperatorID {
					t.Fatalf("audit of bootstrap: got %+v, %v", es, err)
				}
			}
			if _, err := e.srv.Staff.Bootstrap(ctx, "second@staff.example", staff.RoleAdmin, "staff password 1"); !errs.Is(err, errs.Unauthenticated) {
				t.Fatalf("bootstrap with an enabled admin: got %v, want Unauthenticated (an admin must log in)", err)
			}
		})
	}
}

// TestFrontEndsDoNotAuthorize: the API, the portal and console, and the
// CLI never decide themselves whether a staff action is allowed; they ask
// the services (staff.Service.Allowed and the services' own answers).
func TestFrontEndsDoNotAuthorize(t *testing.T) {
	for _, dir := range []string{"api", "web", "cli"} {
		paths, err := filepath.Glob(filepath.Join("..", dir, "*.go"))
		if err != nil || len(paths) == 0 {
			t.Fatalf("%s: %v, %d files", dir, err, len(paths))
		}
		for _, path := range paths {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			file, err := parser.ParseFile(token.NewFileSet(), path, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "staff" && (sel.Sel.Name == "Can" || sel.Sel.Name == "Authorize") {
					t.Errorf("%s calls staff.%s: ask the service instead", path, sel.Sel.Name)
				}
				return true
			})
		}
	}
}

// shortSettle lets a KEK rotation destroy the old key a second after it
// started, so tests can finish one.
func shortSettle(c *config.Settings) { c.KEKSettle = time.Second }

// TestJobsActAsSystem runs the housekeeping of `serve` once with work for
// each job: every job acts as staff.System and is audited as the system;
// run again with nothing to do, it records nothing.
func TestJobsActAsSystem(t *testing.T) {
	e := newEnvWith(t, storetest.Backends()[0], nil, shortSettle)
	f, _ := newAuthzFixture(t, e)
	ctx := context.Background()
	calls := staffCalls()
	setup := func(name string) {
		for _, c := range calls {
			if c.name == name {
				c.setup(t, f)
				return
			}
		}
		t.Fatalf("no call %q", name)
	}
	for _, name := range []string{"sweep", "tell users of lapsed gags", "resume erasures", "retry extension notices", "resume notices", "scheduled KEK rotation"} {
		setup(name)
	}
	want := map[string]string{"retention sweep": staff.ActRetentionRun, "lapsed gag notices": staff.ActDisclosureNotify,
		"resume erasures": staff.ActErasureResume, "extension notices": staff.ActErasureResume, "resume notices": staff.ActNoticeRun, "kek rotation": staff.ActKEKRotate}
	// Storage maintenance that decides nothing about anyone's data (it
	// re-encodes what earlier versions wrote) takes no staff action.
	maintenance := map[string]bool{"seal plaintext": true}
	var jobs []jobs.Job
	for _, j := range e.srv.Jobs() {
		if maintenance[j.Name] {
			if _, err := j.Run(ctx); err != nil {
				t.Errorf("%s: %v", j.Name, err)
			}
			continue
		}
		jobs = append(jobs, j)
	}
	if len(jobs) != len(want) {
		t.Fatalf("got %d jobs that act for staff, want %d", len(jobs), len(want))
	}
	for _, j := range jobs {
		before := lastAuditSeq(t, f.st)
		n, err := j.Run(ctx)
		if err != nil || n == 0 {
			t.Fatalf("%s: got %d, %v; want work done", j.Name, n, err)
		}
		es, err := f.st.AuditEntries(ctx, before, 100)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, en := range es {
			found = found || (en.Actor == staff.SystemID && en.Role == staff.RoleSystem && en.Action == want[j.Name])
		}
		if !found {
			t.Errorf("%s: no %s entry by the system in %+v", j.Name, want[j.Name], es)
		}
	}
	before := lastAuditSeq(t, f.st)
	for _, j := range jobs {
		if n, err := j.Run(ctx); err != nil || n != 0 {
			t.Errorf("%s again: got %d, %v; want nothing to do", j.Name, n, err)
		}
	}
	if es, _ := f.st.AuditEntries(ctx, before, 100); len(es) != 0 {
		t.Errorf("idle housekeeping was audited: %+v", es)
	}
}
