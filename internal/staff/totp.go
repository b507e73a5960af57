package staff

import (
	"context"
	"crypto/subtle"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
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
// p must be allowed ActStaffTOTP; the enrollment is audited. Every staff
// session of p ends (store.SetStaffTOTP), since they were opened without
// the second factor: the staff member logs in again with a code.
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
// email), for a lost phone (perhaps in someone else's hands), and ends the
// member's sessions; by must be allowed ActStaffManage. The member enrolls
// again at next login. The reset is audited.
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
// skew around now. It computes every candidate code whatever code is, so
// its cost does not depend on the code.
func (s *Service) matchStep(secret, code string) (int64, bool) {
	code = strings.TrimSpace(code)
	wellFormed := len(code) == 6 && strings.Trim(code, "0123456789") == ""
	now := s.cfg.Clock()
	var step int64
	found := false
	for d := -totpSkew; d <= totpSkew; d++ {
		t := now.Add(time.Duration(d*totpPeriod) * time.Second)
		want, err := totp.GenerateCodeCustom(secret, t, totpOpts())
		if err == nil && wellFormed && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !found {
			step, found = t.Unix()/totpPeriod, true
		}
	}
	return step, found
}

// standInSeed is the TOTP seed checked for staff without a second factor
// (and unknown emails), so that a login costs the same either way.
const standInSeed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

// checkCode checks a login's TOTP code against st's sealed seed, or the
// stand-in seed if st is nil or has no second factor. It returns the
// matching time step; the error is a vault failure of an enrolled account.
func (s *Service) checkCode(st *store.Staff, code string) (int64, bool, error) {
	seed := standInSeed
	if st != nil && st.TOTPSealed != nil {
		if s.cfg.Vault == nil {
			return 0, false, errs.E(errs.Unavailable, "two-factor login is not available")
		}
		b, err := s.cfg.Vault.OpenSecret(totpPurpose, st.TOTPSealed, []byte(st.ID))
		if err != nil {
			return 0, false, err
		}
		seed = string(b)
	}
	step, ok := s.matchStep(seed, code)
	return step, ok, nil
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
