// Package staff holds the operator's staff accounts, their roles, and what
// each role may do. Every staff action on personal data is authorised here
// and recorded in the audit log by the service that performs it.
package staff

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/contact"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/password"
	"github.com/nitronet/nitronet/internal/secret"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/vault"
)

// The roles.
const (
	RoleAdmin          = "admin"
	RoleSupport        = "support"
	RolePrivacyOfficer = "privacy_officer"
	RoleLegal          = "legal"
)

// Roles lists every role.
func Roles() []string { return []string{RoleAdmin, RoleSupport, RolePrivacyOfficer, RoleLegal} }

// The actions staff may be authorised for.
const (
	ActStaffManage      = "staff.manage"         // add, disable staff
	ActGatewayManage    = "gateway.manage"       // add gateways
	ActAnnounce         = "announce"             // service announcements to every inbox
	ActPolicyPublish    = "policy.publish"       // publish policy/terms versions
	ActRetentionRun     = "retention.run"        // run the sweeper on demand
	ActRetentionView    = "retention.view"       // rules and last sweep counts
	ActRecordsView      = "records.view"         // Article 30 record of processing
	ActAuditView        = "audit.view"           // read and verify the audit log
	ActAccountView      = "account.view"         // read an account's personal data
	ActPrivacyView      = "privacy.view"         // read privacy requests
	ActPrivacyExtend    = "privacy.extend"       // extend a request's deadline
	ActPrivacyComplete  = "privacy.complete"     // complete a request
	ActPrivacyDeny      = "privacy.deny"         // deny a request
	ActHoldView         = "hold.view"            // list legal holds
	ActHoldManage       = "hold.manage"          // add, release legal holds
	ActDisclosureView   = "disclosure.view"      // read the disclosure ledger
	ActDisclosureManage = "disclosure.manage"    // record disclosures
	ActTransparency     = "transparency.publish" // sign transparency reports
	ActProcessorManage  = "processor.manage"     // edit the processor register
	ActStatsView        = "stats.view"           // aggregate statistics
	ActGatewayView      = "gateway.view"         // gateway list, live counts
)

// matrix says which role may take which action. A role may only do its
// own actions.
func matrix() map[string][]string {
	return map[string][]string{
		RoleAdmin: {ActStaffManage, ActGatewayManage, ActGatewayView, ActAnnounce, ActRetentionRun, ActRetentionView,
			ActAuditView, ActStatsView, ActRecordsView},
		RoleSupport: {ActAccountView, ActPrivacyView, ActGatewayView},
		RolePrivacyOfficer: {ActPrivacyView, ActPrivacyExtend, ActPrivacyComplete, ActPrivacyDeny, ActAccountView,
			ActHoldView, ActRetentionView, ActRetentionRun, ActRecordsView, ActAuditView, ActProcessorManage,
			ActPolicyPublish, ActStatsView},
		RoleLegal: {ActHoldView, ActHoldManage, ActDisclosureView, ActDisclosureManage, ActTransparency,
			ActAuditView, ActPrivacyView, ActRecordsView},
	}
}

// Can reports whether role may take action.
func Can(role, action string) bool { return slices.Contains(matrix()[role], action) }

// ValidRole reports whether r is a role.
func ValidRole(r string) bool { return slices.Contains(Roles(), r) }

// Principal is an authenticated staff member.
type Principal struct {
	ID    string
	Email string
	Role  string
}

// Auditor records audit entries (package audit's *Log).
type Auditor interface {
	Record(ctx context.Context, actor, role, action, subject, detail string) error
}

// Config holds the service's dependencies.
type Config struct {
	Store  store.StaffStore
	Hasher *password.Hasher
	// Vault seals TOTP seeds; without it two-factor login is unavailable.
	Vault    *vault.Vault
	Audit    Auditor
	Logger   *slog.Logger
	Clock    func() time.Time
	Rand     io.Reader
	TokenTTL time.Duration // default 12h
}

// Service manages staff accounts and sessions. It is safe for concurrent
// use.
type Service struct{ cfg Config }

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Hasher == nil || cfg.Audit == nil || cfg.Logger == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("staff: missing dependency")
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 12 * time.Hour
	}
	return &Service{cfg: cfg}, nil
}

// Operator returns the principal of whoever holds the data directory,
// used for bootstrap actions taken with `nitronet admin` (such as adding
// the first staff account). It has the admin role.
func Operator() Principal { return Principal{ID: "operator", Role: RoleAdmin} }

// Add creates a staff account with role. by is who adds it and must be
// allowed ActStaffManage. It returns the new id. Bad input is Invalid and
// an email already in use Conflict, naming the field "email", "role" or
// "password".
func (s *Service) Add(ctx context.Context, by Principal, email, role, pw string) (string, error) {
	if err := Authorize(by, ActStaffManage); err != nil {
		return "", err
	}
	email, err := contact.NormalizeEmail(email)
	if err != nil {
		return "", err
	}
	if !ValidRole(role) {
		return "", errs.Field(errs.Invalid, "role", "role must be one of %s", strings.Join(Roles(), ", "))
	}
	if err := password.Validate(pw); err != nil {
		return "", err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, pw)
	if err != nil {
		return "", err
	}
	id, err := ident.New(s.cfg.Rand, "stf")
	if err != nil {
		return "", err
	}
	if err := s.cfg.Store.CreateStaff(ctx, &store.Staff{ID: id, Email: email, Role: role, PasswordHash: hash, CreatedAt: s.cfg.Clock()}); errs.Is(err, errs.Conflict) {
		return "", errs.WithField(err, "email")
	} else if err != nil {
		return "", err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, ActStaffManage, id, "added staff account with role "+role); err != nil {
		return "", err
	}
	return id, nil
}

// List returns every staff account (by must be allowed ActStaffManage).
func (s *Service) List(ctx context.Context, by Principal) ([]store.Staff, error) {
	if err := Authorize(by, ActStaffManage); err != nil {
		return nil, err
	}
	return s.cfg.Store.ListStaff(ctx)
}

// SetDisabled disables or re-enables a staff account.
func (s *Service) SetDisabled(ctx context.Context, by Principal, id string, disabled bool) error {
	if err := Authorize(by, ActStaffManage); err != nil {
		return err
	}
	if err := s.cfg.Store.SetStaffDisabled(ctx, id, disabled); err != nil {
		return err
	}
	return s.cfg.Audit.Record(ctx, by.ID, by.Role, ActStaffManage, id, fmt.Sprintf("disabled=%v", disabled))
}

// Credentials are what a staff member logs in with. Code is the TOTP code
// of a staff member who enrolled a second factor, empty otherwise.
type Credentials struct {
	Email, Password, Code string
}

// Check verifies a staff login and returns the principal. Wrong
// credentials and disabled accounts are Unauthenticated, naming no field
// (the answer does not say which was wrong); a missing code for a staff
// member with a second factor is Precondition with field "code", so a
// client can ask for it.
func (s *Service) Check(ctx context.Context, c Credentials) (Principal, error) {
	email, pw := c.Email, c.Password
	bad := errs.E(errs.Unauthenticated, "invalid staff email or password")
	norm, err := contact.NormalizeEmail(email)
	if err != nil || len(pw) > 1024 {
		s.cfg.Hasher.Dummy(ctx)
		return Principal{}, bad
	}
	st, err := s.cfg.Store.StaffByEmail(ctx, norm)
	if errs.Is(err, errs.NotFound) {
		s.cfg.Hasher.Dummy(ctx)
		return Principal{}, bad
	}
	if err != nil {
		return Principal{}, err
	}
	ok, _, err := s.cfg.Hasher.Verify(ctx, pw, st.PasswordHash)
	if err != nil {
		return Principal{}, err
	}
	if !ok || st.Disabled {
		return Principal{}, bad
	}
	if st.TOTPSealed != nil {
		if err := s.checkTOTP(ctx, st.ID, st.TOTPSealed, c.Code); err != nil {
			return Principal{}, err
		}
	}
	return Principal{ID: st.ID, Email: st.Email, Role: st.Role}, nil
}

// Login checks credentials and returns a new staff session token (shown
// once; stored hashed) with its expiry.
func (s *Service) Login(ctx context.Context, c Credentials) (string, time.Time, Principal, error) {
	p, err := s.Check(ctx, c)
	if err != nil {
		return "", time.Time{}, p, err
	}
	tok, hash, err := secret.NewToken(s.cfg.Rand, "nns")
	if err != nil {
		return "", time.Time{}, p, err
	}
	now := s.cfg.Clock()
	exp := now.Add(s.cfg.TokenTTL).Truncate(time.Second)
	if err := s.cfg.Store.CreateStaffToken(ctx, hash, p.ID, now, exp); err != nil {
		return "", time.Time{}, p, err
	}
	s.cfg.Logger.Info("staff login", "staff", p.ID)
	return tok, exp, p, nil
}

// Authenticate returns the principal of a staff session token.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" || len(token) > 256 {
		return Principal{}, errs.E(errs.Unauthenticated, "missing or invalid staff token")
	}
	st, err := s.cfg.Store.StaffByToken(ctx, secret.Hash(token), s.cfg.Clock())
	if errs.Is(err, errs.NotFound) {
		return Principal{}, errs.E(errs.Unauthenticated, "missing or invalid staff token")
	}
	if err != nil {
		return Principal{}, err
	}
	return Principal{ID: st.ID, Email: st.Email, Role: st.Role}, nil
}

// Logout revokes a staff session token.
func (s *Service) Logout(ctx context.Context, token string) error {
	return s.cfg.Store.DeleteStaffToken(ctx, secret.Hash(token))
}

// Authorize returns Forbidden unless p's role may take action.
func Authorize(p Principal, action string) error {
	if p.ID == "" {
		return errs.E(errs.Unauthenticated, "staff login required")
	}
	if !Can(p.Role, action) {
		return errs.E(errs.Forbidden, "the %s role may not %s", p.Role, action)
	}
	return nil
}
