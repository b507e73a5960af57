// Package staff holds the operator's staff accounts, their roles, and what
// each role may do (the role matrix). Every staff action takes the acting
// Principal and is authorised (Authorize) and recorded in the audit log by
// the service that performs it, whichever front end calls it; front ends
// ask Service.Allowed or Service.Actions what to offer and never decide
// themselves. The server's own housekeeping acts as System.
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
	"github.com/nitronet/nitronet/internal/password"
	"github.com/nitronet/nitronet/internal/secret"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/vault"
)

// The roles a staff account can have.
const (
	RoleAdmin          = store.StaffAdminRole
	RoleSupport        = "support"
	RolePrivacyOfficer = "privacy_officer"
	RoleLegal          = "legal"
)

// RoleSystem is the role of the System principal: the server's own
// housekeeping. No staff account can have it.
const RoleSystem = "system"

// Roles lists every role a staff account can have.
func Roles() []string { return []string{RoleAdmin, RoleSupport, RolePrivacyOfficer, RoleLegal} }

// The actions staff may be authorised for. Every service method that
// takes a Principal authorises one of these and records it in the audit
// log.
const (
	ActStaffManage      = "staff.manage"         // add, list, disable, enable staff; change roles; reset two-factor login
	ActStaffTOTP        = "staff.totp"           // turn on two-factor login for one's own account
	ActGatewayManage    = "gateway.manage"       // add and remove gateways
	ActGatewayView      = "gateway.view"         // gateway list, live counts
	ActAnnounce         = "announce"             // service announcements to every inbox
	ActPolicyPublish    = "policy.publish"       // publish policy/terms versions
	ActNoticeRun        = "notice.run"           // list, run and resume notices to every account
	ActRetentionRun     = "retention.run"        // run the sweeper
	ActRetentionView    = "retention.view"       // rules and last sweep counts
	ActRecordsView      = "records.view"         // Article 30 record of processing
	ActAuditView        = "audit.view"           // read and verify the audit log
	ActAccountView      = "account.view"         // read an account's personal data
	ActPrivacyView      = "privacy.view"         // read privacy requests
	ActPrivacyRecord    = "privacy.record"       // record requests received by email, phone or post; enter the codes a requester reads back
	ActPrivacyExtend    = "privacy.extend"       // extend a request's deadline
	ActPrivacyComplete  = "privacy.complete"     // complete a request
	ActPrivacyDeny      = "privacy.deny"         // deny a request
	ActErasureResume    = "privacy.resume"       // finish interrupted and formerly held erasures
	ActHoldView         = "hold.view"            // list legal holds
	ActHoldManage       = "hold.manage"          // add, release legal holds
	ActDisclosureView   = "disclosure.view"      // read the disclosure ledger
	ActDisclosureManage = "disclosure.manage"    // record disclosures
	ActDisclosureNotify = "disclosure.notify"    // tell users of disclosures whose gag has lapsed
	ActTransparency     = "transparency.publish" // sign transparency reports
	ActProcessorManage  = "processor.manage"     // edit the processor register
	ActStatsView        = "stats.view"           // aggregate statistics and their budget
	ActStatsOverride    = "stats.override"       // a report beyond the per-report privacy limits, with a reason
	ActBreachView       = "breach.view"          // read the breach register
	ActBreachManage     = "breach.manage"        // open and update breach records
	ActBreachNotify     = "breach.notify"        // tell the people affected by a breach (Art. 34)
	ActKEKRotate        = "kek.rotate"           // rotate the key-encryption key, destroying the old one
	ActKEKView          = "kek.view"             // the keyring and its rotations (ids and times, never keys)
)

// ActStaffBootstrap is the audit action of a staff account added by
// whoever holds the data directory or database while no enabled admin
// exists (Service.Bootstrap). No role is authorised for it.
const ActStaffBootstrap = "staff.bootstrap"

// matrix says which role may take which action. A role may only do its
// own actions. The system role holds exactly what the housekeeping jobs
// of `nitronet serve` do, and what creating its in-process gateway needs.
func matrix() map[string][]string {
	return map[string][]string{
		RoleAdmin: {ActStaffManage, ActStaffTOTP, ActGatewayManage, ActGatewayView, ActAnnounce, ActNoticeRun,
			ActRetentionRun, ActRetentionView, ActAuditView, ActStatsView, ActRecordsView, ActBreachView, ActKEKRotate, ActKEKView},
		RoleSupport: {ActStaffTOTP, ActAccountView, ActPrivacyView, ActPrivacyRecord, ActGatewayView},
		RolePrivacyOfficer: {ActStaffTOTP, ActPrivacyView, ActPrivacyRecord, ActPrivacyExtend, ActPrivacyComplete, ActPrivacyDeny,
			ActErasureResume, ActAccountView, ActHoldView, ActRetentionView, ActRetentionRun, ActRecordsView,
			ActAuditView, ActProcessorManage, ActPolicyPublish, ActNoticeRun, ActStatsView, ActStatsOverride, ActKEKView,
			ActBreachView, ActBreachManage, ActBreachNotify},
		RoleLegal: {ActStaffTOTP, ActHoldView, ActHoldManage, ActDisclosureView, ActDisclosureManage,
			ActDisclosureNotify, ActTransparency, ActAuditView, ActPrivacyView, ActRecordsView,
			ActBreachView, ActBreachManage, ActBreachNotify},
		RoleSystem: {ActRetentionRun, ActDisclosureNotify, ActErasureResume, ActNoticeRun, ActGatewayManage, ActKEKRotate},
	}
}

// Can reports whether role may take action.
func Can(role, action string) bool { return slices.Contains(matrix()[role], action) }

// RoleName names role for people ("privacy officer").
func RoleName(role string) string { return strings.ReplaceAll(role, "_", " ") }

// RoleTitle names role for headings and tables, capitalised
// ("Privacy officer"), including the System's and the operator's, which
// no staff account can have.
func RoleTitle(role string) string {
	switch role {
	case RoleAdmin:
		return "Administrator"
	case RoleSystem:
		return "System (housekeeping)"
	case OperatorID:
		return "Operator (data directory)"
	case "":
		return ""
	}
	n := RoleName(role)
	return strings.ToUpper(n[:1]) + n[1:]
}

// ValidRole reports whether r is a role a staff account can have.
func ValidRole(r string) bool { return slices.Contains(Roles(), r) }

// Principal is who takes a staff action: an authenticated staff member
// (Service.Check, Service.Authenticate) or the System. The zero Principal
// is nobody, and every action answers it Unauthenticated.
type Principal struct {
	ID    string
	Email string
	Role  string
}

// SystemID is the audit-log actor of the System principal.
const SystemID = "system"

// System returns the principal the server's own housekeeping acts as
// (the scheduled retention sweep, notices of lapsed gag orders, resumed
// erasures and notices, the scheduled key-encryption-key rotation, and the
// in-process gateway of `serve --gateway`).
// Its role, RoleSystem, allows exactly those actions, and the audit log
// names it as the actor.
func System() Principal { return Principal{ID: SystemID, Role: RoleSystem} }

// IsSystem reports whether p is the System principal.
func (p Principal) IsSystem() bool { return p.ID == SystemID && p.Role == RoleSystem }

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

// Credentials are what a staff member logs in with, in one form: Code is
// the TOTP code of a staff member who enrolled a second factor (ignored
// for one who has not).
type Credentials struct {
	Email, Password, Code string
}

// errBadLogin is the one answer to every failed staff login.
func errBadLogin() error {
	return errs.E(errs.Unauthenticated, "invalid staff email, password or code")
}

// Check verifies a staff login and returns the principal. Every failure
// (an unknown email, a wrong password, a disabled account, a missing,
// wrong or replayed code) is the same Unauthenticated error, naming no
// field, after the same work: one argon2id verification and one TOTP
// check, against a stand-in seed for an account without a second factor.
// So neither the answer nor its timing tells a right password with a
// missing code from a wrong password (issue 10, finding 3).
func (s *Service) Check(ctx context.Context, c Credentials) (Principal, error) {
	var st *store.Staff
	norm, err := contact.NormalizeEmail(c.Email)
	if err == nil && len(c.Password) <= 1024 {
		st, err = s.cfg.Store.StaffByEmail(ctx, norm)
		if errs.Is(err, errs.NotFound) {
			st, err = nil, nil
		}
		if err != nil {
			return Principal{}, err
		}
	}
	pwOK := false
	if st != nil {
		ok, _, err := s.cfg.Hasher.Verify(ctx, c.Password, st.PasswordHash)
		if err != nil {
			return Principal{}, err
		}
		pwOK = ok
	} else {
		s.cfg.Hasher.Dummy(ctx)
	}
	// The code is checked whatever the password was: the same work for
	// every answer.
	step, codeOK, err := s.checkCode(st, c.Code)
	if err != nil && pwOK {
		return Principal{}, err
	}
	if !pwOK || st.Disabled {
		return Principal{}, errBadLogin()
	}
	if st.TOTPSealed != nil {
		if !codeOK {
			return Principal{}, errBadLogin()
		}
		if err := s.cfg.Store.UseStaffTOTPStep(ctx, st.ID, step); errs.Is(err, errs.Conflict) {
			// A replayed code answers like a wrong one.
			return Principal{}, errBadLogin()
		} else if err != nil {
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

// Authorize returns Unauthenticated for the zero Principal and Forbidden
// unless p's role may take action. Services call it; front ends ask
// Service.Allowed or Service.Actions instead.
func Authorize(p Principal, action string) error {
	if p.ID == "" {
		return errs.E(errs.Unauthenticated, "staff login required")
	}
	if !Can(p.Role, action) {
		return errs.E(errs.Forbidden, "the %s role may not %s", p.Role, action)
	}
	return nil
}
