// Package accounts implements sign-up, login sessions, contact verification
// and password reset on top of the store, the PII vault and the notifier.
//
// Email and mobile reach the store only sealed under the account's data key;
// lookups go through keyed blind indexes. Passwords are argon2id hashes.
// Tokens, reset tokens and codes are stored hashed. Nothing secret or
// personal is ever logged.
package accounts

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/contact"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/password"
	"github.com/nitronet/nitronet/internal/secret"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/vault"
)

// Code policy, from the foundation issue: 6 digits, 10 minutes, 5 tries.
const (
	CodeTTL         = 10 * time.Minute
	CodeMaxAttempts = 5
	ResetTTL        = 30 * time.Minute
	PurposeVerify   = "verify"
)

// Config holds the service's dependencies and settings.
type Config struct {
	Store    store.Store
	Vault    *vault.Vault
	Hasher   *password.Hasher
	Notifier notify.Notifier
	// Audit records staff reads of accounts (StaffShow).
	Audit  staff.Auditor
	Logger *slog.Logger
	Clock  func() time.Time
	Rand   io.Reader
	// MobileRegion is the default region for numbers given without a
	// country code ("" accepts only +E.164).
	MobileRegion string
	// SessionTTL is how long a login token lives.
	SessionTTL time.Duration
	// PortalURL, when set, is used to build links in messages.
	PortalURL string
	// Policies, if not nil, records that a new account accepts the
	// current version of each policy document (the sign-up form shows and
	// links them). Nil records nothing: the user is then asked to accept
	// them after logging in.
	Policies PolicyAcceptor
}

// PolicyAcceptor records an account's acceptance of the current policy
// documents (a *policy.Service).
type PolicyAcceptor interface {
	AcceptCurrent(ctx context.Context, accountID string) error
}

// Service is the accounts service. It is safe for concurrent use.
type Service struct {
	cfg     Config
	codeKey []byte
}

// New returns a Service. All Config fields but MobileRegion and PortalURL
// are required.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Vault == nil || cfg.Hasher == nil || cfg.Notifier == nil || cfg.Audit == nil ||
		cfg.Logger == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("accounts: missing dependency")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 7 * 24 * time.Hour
	}
	return &Service{cfg: cfg, codeKey: cfg.Vault.DeriveKey("one-time codes")}, nil
}

// Profile is an account as its owner sees it.
type Profile struct {
	ID             string    `json:"id"`
	Email          string    `json:"email"`
	Mobile         string    `json:"mobile"`
	EmailVerified  bool      `json:"email_verified"`
	MobileVerified bool      `json:"mobile_verified"`
	CreatedAt      time.Time `json:"created_at"`
}

// Session is a new login token. Token is shown once; only its hash is kept.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// aad binds a sealed field to its account and field name, so ciphertexts
// cannot be swapped between rows or columns.
func aad(accountID, field string) []byte { return []byte(accountID + "|" + field) }

// Signup creates an account, records its acceptance of the current
// policy documents (Config.Policies), and sends a verification code to
// both contacts. It returns the new account id. If the acceptance cannot
// be recorded the account stands, and the user is asked to accept the
// documents at login, as after a material change. A taken email or mobile is
// Conflict (naming neither); invalid input is Invalid, with field
// "email", "mobile" or "password".
func (s *Service) Signup(ctx context.Context, email, mobile, pw string) (string, error) {
	email, mobile, err := s.checkSignup(email, mobile, pw)
	if err != nil {
		return "", err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, pw)
	if err != nil {
		return "", fmt.Errorf("signup: %w", err)
	}
	if err := s.contactsFree(ctx, email, mobile); err != nil {
		return "", err
	}
	id, err := ident.New(s.cfg.Rand, "acc")
	if err != nil {
		return "", err
	}
	dk, wrapped, err := s.cfg.Vault.NewDataKey(id)
	if err != nil {
		return "", fmt.Errorf("signup: %w", err)
	}
	defer dk.Destroy()
	emailSealed, err := dk.Seal([]byte(email), aad(id, "email"))
	if err != nil {
		return "", fmt.Errorf("signup: %w", err)
	}
	mobileSealed, err := dk.Seal([]byte(mobile), aad(id, "mobile"))
	if err != nil {
		return "", fmt.Errorf("signup: %w", err)
	}
	a := &store.Account{
		ID:           id,
		EmailSealed:  emailSealed,
		MobileSealed: mobileSealed,
		WrappedKey:   wrapped,
		EmailIndex:   s.cfg.Vault.BlindIndex("email", email),
		MobileIndex:  s.cfg.Vault.BlindIndex("mobile", mobile),
		PasswordHash: hash,
		Status:       store.StatusActive,
		CreatedAt:    s.cfg.Clock(),
	}
	if err := s.cfg.Store.CreateAccount(ctx, a); err != nil {
		if errs.Is(err, errs.Conflict) {
			return "", errs.E(errs.Conflict, "an account with this email or mobile number already exists")
		}
		return "", fmt.Errorf("signup: %w", err)
	}
	s.cfg.Logger.Info("account created", "account", id)
	if s.cfg.Policies != nil {
		if err := s.cfg.Policies.AcceptCurrent(ctx, id); err != nil {
			s.cfg.Logger.Warn("policy acceptance at sign-up not recorded", "account", id, "err", errs.CodeOf(err))
		}
	}
	for _, ch := range []store.Channel{store.Email, store.Mobile} {
		if err := s.sendCode(ctx, a, ch, PurposeVerify); err != nil {
			// The account exists; the user can ask for a new code.
			s.cfg.Logger.Warn("verification code not sent", "account", id, "channel", string(ch), "err", errs.CodeOf(err))
		}
	}
	return id, nil
}

// CheckSignup checks sign-up input without creating anything: every bad
// input at once, as one error joined with errs.Join (fields "email",
// "mobile", "password", in that order), or nil. Signup makes the same
// checks; a front end calls this first to answer bad input without
// spending a rate-limit token.
func (s *Service) CheckSignup(email, mobile, pw string) error {
	_, _, err := s.checkSignup(email, mobile, pw)
	return err
}

// checkSignup returns the normalised email and mobile, or every input's
// error joined.
func (s *Service) checkSignup(email, mobile, pw string) (string, string, error) {
	email, eErr := contact.NormalizeEmail(email)
	mobile, mErr := contact.NormalizeMobile(mobile, s.cfg.MobileRegion)
	if err := errs.Join(eErr, mErr, password.Validate(pw)); err != nil {
		return "", "", err
	}
	return email, mobile, nil
}

// Contacts returns the decrypted email and mobile of account a.
func (s *Service) Contacts(a *store.Account) (email, mobile string, err error) {
	dk, err := s.cfg.Vault.Unwrap(a.ID, a.WrappedKey)
	if err != nil {
		return "", "", fmt.Errorf("unwrap data key: %w", err)
	}
	defer dk.Destroy()
	e, err := dk.Open(a.EmailSealed, aad(a.ID, "email"))
	if err != nil {
		return "", "", fmt.Errorf("open email: %w", err)
	}
	m, err := dk.Open(a.MobileSealed, aad(a.ID, "mobile"))
	if err != nil {
		return "", "", fmt.Errorf("open mobile: %w", err)
	}
	return string(e), string(m), nil
}

// SendCode issues a new one-time code for purpose to channel ch of the
// account, replacing any earlier unused one.
func (s *Service) SendCode(ctx context.Context, accountID string, ch store.Channel, purpose string) error {
	if !ch.Valid() {
		return errs.Field(errs.Invalid, "channel", `channel must be "email" or "mobile"`)
	}
	a, err := s.cfg.Store.Account(ctx, accountID)
	if err != nil {
		return err
	}
	return s.sendCode(ctx, a, ch, purpose)
}

func (s *Service) sendCode(ctx context.Context, a *store.Account, ch store.Channel, purpose string) error {
	code, err := secret.NewCode(s.cfg.Rand)
	if err != nil {
		return err
	}
	now := s.cfg.Clock()
	c := &store.Code{
		AccountID: a.ID, Channel: ch, Purpose: purpose,
		Hash:      secret.HashCode(s.codeKey, codeScope(a.ID, ch, purpose), code),
		ExpiresAt: now.Add(CodeTTL), CreatedAt: now,
	}
	if err := s.cfg.Store.PutCode(ctx, c); err != nil {
		return fmt.Errorf("store code: %w", err)
	}
	email, mobile, err := s.Contacts(a)
	if err != nil {
		return err
	}
	what := "verify your " + string(ch)
	if purpose != PurposeVerify {
		what = "confirm your " + strings.ReplaceAll(purpose, "-", " ")
	}
	body := fmt.Sprintf("Your Nitronet code to %s is %s.\nIt expires in %d minutes. If you did not ask for it, ignore this message.\n",
		what, code, int(CodeTTL/time.Minute))
	m := notify.Message{Channel: "email", To: email, Subject: "Your Nitronet code", Body: body, Kind: purpose + "-code", Account: a.ID}
	if ch == store.Mobile {
		m = notify.Message{Channel: "sms", To: mobile, Body: body, Kind: purpose + "-code", Account: a.ID}
	}
	if err := s.cfg.Notifier.Send(ctx, m); err != nil {
		return errs.Wrap(errs.Unavailable, err, "could not send the code; try again later")
	}
	return nil
}

func codeScope(accountID string, ch store.Channel, purpose string) string {
	return accountID + "|" + string(ch) + "|" + purpose
}

// CheckCode consumes a one-time code for purpose on channel ch. It
// returns Unauthenticated for a wrong code, Gone for an expired, used or
// missing code, and RateLimited once CodeMaxAttempts tries were spent.
// These errors name the field "code"; a caller whose API calls the code
// something else relabels them with errs.WithField.
func (s *Service) CheckCode(ctx context.Context, accountID string, ch store.Channel, purpose, code string) error {
	if !ch.Valid() {
		return errs.Field(errs.Invalid, "channel", `channel must be "email" or "mobile"`)
	}
	code = strings.TrimSpace(code)
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return errs.Field(errs.Invalid, "code", "code must be 6 digits")
	}
	c, err := s.cfg.Store.ActiveCode(ctx, accountID, ch, purpose)
	if errs.Is(err, errs.NotFound) {
		return errs.Field(errs.Gone, "code", "no code is pending for this %s; request a new one", ch)
	}
	if err != nil {
		return err
	}
	if !s.cfg.Clock().Before(c.ExpiresAt) {
		return errs.Field(errs.Gone, "code", "the code has expired; request a new one")
	}
	if c.Attempts >= CodeMaxAttempts {
		return errs.Field(errs.RateLimited, "code", "too many wrong codes; request a new one")
	}
	n, err := s.cfg.Store.CountCodeAttempt(ctx, accountID, ch, purpose)
	if err != nil {
		return err
	}
	if n > CodeMaxAttempts {
		return errs.Field(errs.RateLimited, "code", "too many wrong codes; request a new one")
	}
	if !secret.Equal(c.Hash, secret.HashCode(s.codeKey, codeScope(accountID, ch, purpose), code)) {
		return errs.Field(errs.Unauthenticated, "code", "wrong code")
	}
	if err := s.cfg.Store.UseCode(ctx, accountID, ch, purpose, s.cfg.Clock()); err != nil {
		return err
	}
	return nil
}

// Verify marks channel ch of the account verified if code is right.
func (s *Service) Verify(ctx context.Context, accountID string, ch store.Channel, code string) error {
	if err := s.CheckCode(ctx, accountID, ch, PurposeVerify, code); err != nil {
		return err
	}
	if err := s.cfg.Store.SetVerified(ctx, accountID, ch); err != nil {
		return err
	}
	s.cfg.Logger.Info("contact verified", "account", accountID, "channel", string(ch))
	return nil
}

// Login checks the email and password and returns a new session. Unknown
// email and wrong password give the same Unauthenticated error and take
// the same time.
func (s *Service) Login(ctx context.Context, email, pw string) (*Session, string, error) {
	bad := errs.E(errs.Unauthenticated, "invalid email or password")
	norm, err := contact.NormalizeEmail(email)
	if err != nil || len(pw) > 1024 {
		s.cfg.Hasher.Dummy(ctx)
		return nil, "", bad
	}
	a, err := s.accountByIndex(ctx, store.Email, norm)
	if errs.Is(err, errs.NotFound) {
		s.cfg.Hasher.Dummy(ctx)
		return nil, "", bad
	}
	if err != nil {
		return nil, "", err
	}
	ok, _, err := s.cfg.Hasher.Verify(ctx, pw, a.PasswordHash)
	if err != nil {
		return nil, "", fmt.Errorf("login: %w", err)
	}
	if !ok {
		return nil, "", bad
	}
	sess, err := s.NewSession(ctx, a.ID)
	if err != nil {
		return nil, "", err
	}
	return sess, a.ID, nil
}

// NewSession issues a login token for the account.
func (s *Service) NewSession(ctx context.Context, accountID string) (*Session, error) {
	tok, hash, err := secret.NewToken(s.cfg.Rand, "nnt")
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock()
	t := &store.Token{Hash: hash, AccountID: accountID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL).Truncate(time.Second)}
	if err := s.cfg.Store.CreateToken(ctx, t); err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	return &Session{Token: tok, ExpiresAt: t.ExpiresAt.UTC()}, nil
}

// Authenticate returns the account id that token belongs to. An unknown,
// expired or revoked token is Unauthenticated.
func (s *Service) Authenticate(ctx context.Context, token string) (string, error) {
	if token == "" || len(token) > 256 {
		return "", errs.E(errs.Unauthenticated, "missing or invalid token")
	}
	t, err := s.cfg.Store.TokenByHash(ctx, secret.Hash(token), s.cfg.Clock())
	if errs.Is(err, errs.NotFound) {
		return "", errs.E(errs.Unauthenticated, "missing or invalid token")
	}
	if err != nil {
		return "", err
	}
	return t.AccountID, nil
}

// Logout revokes token. Revoking an unknown token is not an error.
func (s *Service) Logout(ctx context.Context, token string) error {
	return s.cfg.Store.DeleteToken(ctx, secret.Hash(token))
}

// LogoutAll revokes every session of the account.
func (s *Service) LogoutAll(ctx context.Context, accountID string) error {
	return s.cfg.Store.DeleteAccountTokens(ctx, accountID)
}

// Profile returns the account with its contacts decrypted.
func (s *Service) Profile(ctx context.Context, accountID string) (*Profile, error) {
	a, err := s.cfg.Store.Account(ctx, accountID)
	if err != nil {
		return nil, err
	}
	email, mobile, err := s.Contacts(a)
	if err != nil {
		return nil, err
	}
	return &Profile{ID: a.ID, Email: email, Mobile: mobile, EmailVerified: a.EmailVerified,
		MobileVerified: a.MobileVerified, CreatedAt: a.CreatedAt.UTC()}, nil
}

// RequestReset starts a password reset for email. Following OWASP's
// forgot-password guidance it returns nil whether or not the account
// exists, and takes comparable time either way; the token goes only to the
// account's email.
func (s *Service) RequestReset(ctx context.Context, email string) error {
	norm, err := contact.NormalizeEmail(email)
	if err != nil {
		return err
	}
	a, err := s.accountByIndex(ctx, store.Email, norm)
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	tok, hash, err := secret.NewToken(s.cfg.Rand, "nnr")
	if err != nil {
		return err
	}
	now := s.cfg.Clock()
	if err := s.cfg.Store.CreateResetToken(ctx, &store.ResetToken{Hash: hash, AccountID: a.ID, CreatedAt: now, ExpiresAt: now.Add(ResetTTL)}); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	addr, _, err := s.Contacts(a)
	if err != nil {
		return err
	}
	body := "Someone asked to reset the password of your Nitronet account.\n" +
		"If it was you, use this single-use token within 30 minutes:\n\n  " + tok + "\n\n"
	if s.cfg.PortalURL != "" {
		body += "or open " + strings.TrimRight(s.cfg.PortalURL, "/") + "/reset?token=" + tok + "\n\n"
	}
	body += "With the CLI: nitronet password reset --token TOKEN\nIf it was not you, ignore this message; your password is unchanged.\n"
	if err := s.cfg.Notifier.Send(ctx, notify.Message{Channel: "email", To: addr, Subject: "Reset your Nitronet password", Body: body, Kind: "password-reset", Account: a.ID}); err != nil {
		// Do not reveal to the caller that the account exists.
		s.cfg.Logger.Warn("password reset message not sent", "account", a.ID)
	}
	return nil
}

// Reset sets a new password with a reset token and ends every session of
// the account. The token is single-use; an unknown, used or expired one is
// Gone (field "token"); a bad new password is Invalid (field "password").
func (s *Service) Reset(ctx context.Context, token, newPassword string) error {
	if err := password.Validate(newPassword); err != nil {
		return err
	}
	if token == "" || len(token) > 256 {
		return errs.Field(errs.Gone, "token", "the reset token is invalid or has expired")
	}
	hash, err := s.cfg.Hasher.Hash(ctx, newPassword)
	if err != nil {
		return err
	}
	accountID, err := s.cfg.Store.ConsumeResetToken(ctx, secret.Hash(token), s.cfg.Clock())
	if err != nil {
		if errs.Is(err, errs.Gone) || errs.Is(err, errs.NotFound) {
			return errs.Field(errs.Gone, "token", "the reset token is invalid or has expired")
		}
		return err
	}
	if err := s.cfg.Store.SetPassword(ctx, accountID, hash); err != nil {
		return err
	}
	s.cfg.Logger.Info("password reset", "account", accountID)
	return nil
}

// ChangePassword replaces the password after checking the current one and
// ends all sessions; the caller issues a fresh one. A wrong current
// password is Unauthenticated with field "current_password", a bad new one
// Invalid with field "new_password".
func (s *Service) ChangePassword(ctx context.Context, accountID, current, next string) error {
	if err := s.CheckPassword(ctx, accountID, current); err != nil {
		return errs.WithField(err, "current_password")
	}
	if err := password.Validate(next); err != nil {
		return errs.WithField(err, "new_password")
	}
	hash, err := s.cfg.Hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	return s.cfg.Store.SetPassword(ctx, accountID, hash)
}

// CheckPassword returns Unauthenticated (field "password") unless pw is
// the account's current password.
func (s *Service) CheckPassword(ctx context.Context, accountID, pw string) error {
	a, err := s.cfg.Store.Account(ctx, accountID)
	if err != nil {
		return err
	}
	if len(pw) > 1024 {
		return errs.Field(errs.Unauthenticated, "password", "wrong password")
	}
	ok, _, err := s.cfg.Hasher.Verify(ctx, pw, a.PasswordHash)
	if err != nil {
		return err
	}
	if !ok {
		return errs.Field(errs.Unauthenticated, "password", "wrong password")
	}
	return nil
}
