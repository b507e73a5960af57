package staff

import (
	"context"
	"crypto/subtle"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters: the authenticator-app defaults (RFC 6238, 30 s steps,
// 6 digits, HMAC-SHA1), with one step of clock skew either way.
const (
	totpPeriod  = 30
	totpSkew    = 1
	totpPurpose = "staff totp"
)

func totpOpts() totp.ValidateOpts {
	return totp.ValidateOpts{Period: totpPeriod, Skew: totpSkew, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
}

// Enrollment is a TOTP seed offered to a staff member, not yet confirmed.
// URL is the otpauth:// URL an authenticator app takes (also as a QR
// code); Secret is the same seed in base32 for typing in.
type Enrollment struct {
	URL    string
	Secret string
}

// BeginTOTP generates a new TOTP seed for staff member p, who must be
// allowed ActStaffTOTP. Nothing is stored (or audited) until ConfirmTOTP
// proves the staff member's app produces codes from it.
func (s *Service) BeginTOTP(ctx context.Context, p Principal) (*Enrollment, error) {
	if err := Authorize(p, ActStaffTOTP); err != nil {
		return nil, err
	}
	k, err := totp.Generate(totp.GenerateOpts{Issuer: "Nitronet", AccountName: p.Email, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Rand: s.cfg.Rand})
	if err != nil {
		return nil, err
	}
	return &Enrollment{URL: k.URL(), Secret: k.Secret()}, nil
}

// ConfirmTOTP checks code against the offered secret and, if it is right,
// stores the seed sealed by the vault: from then on p's login needs a code.
// p must be allowed ActStaffTOTP; the enrollment is audited.
func (s *Service) ConfirmTOTP(ctx context.Context, p Principal, secret, code string) error {
	if err := Authorize(p, ActStaffTOTP); err != nil {
		return err
	}
	if s.cfg.Vault == nil {
		return errs.E(errs.Unavailable, "two-factor login is not available")
	}
	step, ok := s.matchStep(secret, code)
	if !ok {
		return errs.Field(errs.Unauthenticated, "code", "wrong code: check the time on your device and try the next one")
	}
	sealed, err := s.cfg.Vault.SealSecret(totpPurpose, []byte(secret), []byte(p.ID))
	if err != nil {
		return err
	}
	if err := s.cfg.Store.SetStaffTOTP(ctx, p.ID, sealed); err != nil {
		return err
	}
	if err := s.cfg.Store.UseStaffTOTPStep(ctx, p.ID, step); err != nil {
		return err
	}
	return s.cfg.Audit.Record(ctx, p.ID, p.Role, ActStaffTOTP, p.ID, "two-factor login enrolled")
}

// ResetTOTP removes the second factor of the staff account ref (id or
// email), for a lost phone; by must be allowed ActStaffManage. The member
// enrolls again at next login. The reset is audited.
func (s *Service) ResetTOTP(ctx context.Context, by Principal, ref string) error {
	if err := Authorize(by, ActStaffManage); err != nil {
		return err
	}
	st, err := s.find(ctx, ref)
	if err != nil {
		return err
	}
	if err := s.cfg.Store.SetStaffTOTP(ctx, st.ID, nil); err != nil {
		return err
	}
	return s.cfg.Audit.Record(ctx, by.ID, by.Role, ActStaffManage, st.ID, "two-factor login reset")
}

// matchStep returns the time step whose code is code, within the allowed
// skew around now.
func (s *Service) matchStep(secret, code string) (int64, bool) {
	code = strings.TrimSpace(code)
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return 0, false
	}
	now := s.cfg.Clock()
	for d := -totpSkew; d <= totpSkew; d++ {
		t := now.Add(time.Duration(d*totpPeriod) * time.Second)
		want, err := totp.GenerateCodeCustom(secret, t, totpOpts())
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return t.Unix() / totpPeriod, true
		}
	}
	return 0, false
}

// checkTOTP verifies a login's second factor for an enrolled staff
// member, refusing a code already used (a replay).
func (s *Service) checkTOTP(ctx context.Context, id string, sealed []byte, code string) error {
	if code == "" {
		return errs.Field(errs.Precondition, "code", "two-factor code required")
	}
	if s.cfg.Vault == nil {
		return errs.E(errs.Unavailable, "two-factor login is not available")
	}
	secret, err := s.cfg.Vault.OpenSecret(totpPurpose, sealed, []byte(id))
	if err != nil {
		return err
	}
	step, ok := s.matchStep(string(secret), code)
	if !ok {
		return errs.E(errs.Unauthenticated, "invalid staff email, password or code")
	}
	if err := s.cfg.Store.UseStaffTOTPStep(ctx, id, step); err != nil {
		if errs.Is(err, errs.Conflict) {
			// A replayed code answers like a wrong one.
			return errs.E(errs.Unauthenticated, "invalid staff email, password or code")
		}
		return err
	}
	return nil
}

// ResealSecrets re-seals every staff member's TOTP seed under the vault's
// primary key-encryption key, for a KEK rotation (package rekey, which
// authorises and audits the rotation), and returns how many it re-sealed.
// A seed sealed under a KEK no longer in the keyring cannot be re-sealed:
// ResealSecrets counts it in unreadable and leaves it, and its owner must
// enrol again (ResetTOTP).
func (s *Service) ResealSecrets(ctx context.Context) (resealed, unreadable int64, err error) {
	if s.cfg.Vault == nil {
		return 0, 0, nil
	}
	secrets, err := s.cfg.Store.StaffSecrets(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, x := range secrets {
		sealed, changed, err := s.cfg.Vault.Reseal(totpPurpose, x.Sealed, []byte(x.StaffID))
		if err != nil {
			unreadable++
			continue
		}
		if !changed {
			continue
		}
		ok, err := s.cfg.Store.ResealStaffSecret(ctx, x.StaffID, x.Sealed, sealed)
		if err != nil {
			return resealed, unreadable, err
		}
		if ok {
			resealed++
		}
	}
	return resealed, unreadable, nil
}
