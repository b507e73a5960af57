package staff

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/contact"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/password"
	"github.com/nitronet/nitronet/internal/store"
)

// OperatorID is the audit-log actor of a bootstrap: whoever holds the data
// directory or database (Service.Bootstrap).
const OperatorID = "operator"

// Member is a staff account as staff managers see it: no password hash,
// no second-factor seed.
type Member struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	TwoFactor bool      `json:"two_factor"`
	CreatedAt time.Time `json:"created_at"`
}

func member(st *store.Staff) Member {
	return Member{ID: st.ID, Email: st.Email, Role: st.Role, Disabled: st.Disabled, TwoFactor: st.TOTPSealed != nil,
		CreatedAt: st.CreatedAt.UTC()}
}

// Allowed reports whether p may take action: the same rule every service
// applies before acting (Authorize). Front ends use it to hide what p
// cannot use; the service still decides.
func (s *Service) Allowed(p Principal, action string) bool { return Authorize(p, action) == nil }

// Actions returns the actions p may take, sorted; none for the zero
// Principal.
func (s *Service) Actions(p Principal) []string {
	if p.ID == "" {
		return nil
	}
	out := slices.Clone(matrix()[p.Role])
	slices.Sort(out)
	return out
}

// newStaff validates a new account's email, role and password and returns
// its row, with a new id and the password hashed.
func (s *Service) newStaff(ctx context.Context, email, role, pw string) (*store.Staff, error) {
	email, err := contact.NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if !ValidRole(role) {
		return nil, errs.Field(errs.Invalid, "role", "role must be one of %s", strings.Join(Roles(), ", "))
	}
	if err := password.Validate(pw, email); err != nil {
		return nil, err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, pw)
	if err != nil {
		return nil, err
	}
	id, err := ident.New(s.cfg.Rand, "stf")
	if err != nil {
		return nil, err
	}
	return &store.Staff{ID: id, Email: email, Role: role, PasswordHash: hash, CreatedAt: s.cfg.Clock()}, nil
}

// Add creates a staff account with role. by is who adds it and must be
// allowed ActStaffManage. It returns the new id. Bad input is Invalid and
// an email already in use Conflict, naming the field "email", "role" or
// "password".
func (s *Service) Add(ctx context.Context, by Principal, email, role, pw string) (string, error) {
	if err := Authorize(by, ActStaffManage); err != nil {
		return "", err
	}
	st, err := s.newStaff(ctx, email, role, pw)
	if err != nil {
		return "", err
	}
	if err := s.cfg.Store.CreateStaff(ctx, st); errs.Is(err, errs.Conflict) {
		return "", errs.WithField(err, "email")
	} else if err != nil {
		return "", err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, ActStaffManage, st.ID, "added staff account with role "+role); err != nil {
		return "", err
	}
	return st.ID, nil
}

// Bootstrap creates a staff account with role for whoever holds the data
// directory or database, with no staff login: the first admin of a new
// installation, or the admin that recovers one where no enabled admin is
// left. It works only while no enabled admin exists; otherwise it is
// Unauthenticated: an admin, logged in, adds staff with Add. The account
// and its audit entry (action ActStaffBootstrap, actor OperatorID) are
// written in one transaction. It returns the new id; input errors are
// Add's.
func (s *Service) Bootstrap(ctx context.Context, email, role, pw string) (string, error) {
	st, err := s.newStaff(ctx, email, role, pw)
	if err != nil {
		return "", err
	}
	e := auditchain.Entry{At: s.cfg.Clock(), Actor: OperatorID, Role: OperatorID, Action: ActStaffBootstrap,
		Subject: st.ID, Detail: "added staff account with role " + role + " while no enabled admin existed"}
	if _, err := s.cfg.Store.BootstrapStaff(ctx, st, e); errs.Is(err, errs.Precondition) {
		return "", errs.E(errs.Unauthenticated, "an enabled admin exists: staff are added by an admin, logged in")
	} else if errs.Is(err, errs.Conflict) {
		return "", errs.WithField(err, "email")
	} else if err != nil {
		return "", err
	}
	s.cfg.Logger.Info("staff bootstrap", "staff", st.ID, "role", role)
	return st.ID, nil
}

// List returns every staff account, oldest first. by must be allowed
// ActStaffManage; the listing is audited.
func (s *Service) List(ctx context.Context, by Principal) ([]Member, error) {
	if err := Authorize(by, ActStaffManage); err != nil {
		return nil, err
	}
	all, err := s.cfg.Store.ListStaff(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, ActStaffManage, "staff", fmt.Sprintf("listed %d staff accounts", len(all))); err != nil {
		return nil, err
	}
	out := make([]Member, 0, len(all))
	for i := range all {
		out = append(out, member(&all[i]))
	}
	return out, nil
}

// find returns the staff account ref names: a staff id (stf_…) or an
// email address. An unknown one is NotFound.
func (s *Service) find(ctx context.Context, ref string) (*store.Staff, error) {
	ref = strings.TrimSpace(ref)
	if ident.Valid(ref, "stf") {
		return s.cfg.Store.StaffByID(ctx, ref)
	}
	email, err := contact.NormalizeEmail(ref)
	if err != nil {
		return nil, errs.E(errs.NotFound, "no staff account %q: give its id (stf_…) or email", ref)
	}
	return s.cfg.Store.StaffByEmail(ctx, email)
}

// lastAdmin turns the store's Precondition for a change that would leave
// no enabled admin into Conflict: the state conflicts with the change.
func lastAdmin(err error, st *store.Staff) error {
	if errs.Is(err, errs.Precondition) {
		return errs.E(errs.Conflict, "%s is the last enabled admin: add or enable another admin first", st.Email)
	}
	return err
}

// SetRole gives the staff account ref (id or email) role and returns it.
// by must be allowed ActStaffManage. Demoting the last enabled admin is
// Conflict. The change is audited and applies to the member's open
// sessions at once.
func (s *Service) SetRole(ctx context.Context, by Principal, ref, role string) (Member, error) {
	if err := Authorize(by, ActStaffManage); err != nil {
		return Member{}, err
	}
	if !ValidRole(role) {
		return Member{}, errs.Field(errs.Invalid, "role", "role must be one of %s", strings.Join(Roles(), ", "))
	}
	st, err := s.find(ctx, ref)
	if err != nil {
		return Member{}, err
	}
	if err := s.cfg.Store.SetStaffRole(ctx, st.ID, role); err != nil {
		return Member{}, lastAdmin(err, st)
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, ActStaffManage, st.ID,
		fmt.Sprintf("role changed from %s to %s", st.Role, role)); err != nil {
		return Member{}, err
	}
	st.Role = role
	return member(st), nil
}

// Disable disables the staff account ref (id or email) and ends its
// sessions, and returns it. by must be allowed ActStaffManage; disabling
// their own account or the last enabled admin is Conflict. The change is
// audited.
func (s *Service) Disable(ctx context.Context, by Principal, ref string) (Member, error) {
	return s.setDisabled(ctx, by, ref, true)
}

// Enable enables the disabled staff account ref (id or email) again and
// returns it. by must be allowed ActStaffManage. The change is audited.
func (s *Service) Enable(ctx context.Context, by Principal, ref string) (Member, error) {
	return s.setDisabled(ctx, by, ref, false)
}

func (s *Service) setDisabled(ctx context.Context, by Principal, ref string, disabled bool) (Member, error) {
	if err := Authorize(by, ActStaffManage); err != nil {
		return Member{}, err
	}
	st, err := s.find(ctx, ref)
	if err != nil {
		return Member{}, err
	}
	if disabled && st.ID == by.ID {
		return Member{}, errs.E(errs.Conflict, "you cannot disable your own account")
	}
	if err := s.cfg.Store.SetStaffDisabled(ctx, st.ID, disabled); err != nil {
		return Member{}, lastAdmin(err, st)
	}
	detail := "disabled; sessions ended"
	if !disabled {
		detail = "enabled"
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, ActStaffManage, st.ID, detail); err != nil {
		return Member{}, err
	}
	st.Disabled = disabled
	return member(st), nil
}
