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
	"github.com/nitronet/nitronet/internal/ratelimit"
	"github.com/nitronet/nitronet/internal/secret"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/vault"
	"golang.org/x/time/rate"
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
	// Defer queues the work that follows a sign-up, a password-reset
	// request or a contact change (choosing and sending codes, finding
	// accounts, telling owners) for the outbound queue's worker, so that
	// the answer does not depend on what that work finds (package
	// outbound's *Queue; register Handlers on it). Nil runs the work at
	// once, inside the request, whose timing then shows what it found: for
	// tools and tests only.
	Defer Deferrer
}

// PolicyAcceptor records an account's acceptance of the current policy
// documents (a *policy.Service).
type PolicyAcceptor interface {
	AcceptCurrent(ctx context.Context, accountID string) error
}

// Deferrer queues a job of type typ with data for a worker that calls the
// matching Handler (package outbound's *Queue).
type Deferrer interface {
	Enqueue(ctx context.Context, typ string, data []byte) error
}

// Service is the accounts service. It is safe for concurrent use.
type Service struct {
	cfg     Config
	codeKey []byte
	// notices limits the messages telling an account's owner that
	// someone tried to sign up with their contact: at most one per
	// contact per NoticeInterval, so nobody can flood them.
	notices *ratelimit.Limiter
}

// NoticeInterval is the least time between two messages to one owner
// about sign-ups attempted with their email address or mobile number.
const NoticeInterval = time.Hour

// New returns a Service. All Config fields but MobileRegion, PortalURL and
// Defer are required.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Vault == nil || cfg.Hasher == nil || cfg.Notifier == nil || cfg.Audit == nil ||
		cfg.Logger == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("accounts: missing dependency")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 7 * 24 * time.Hour
	}
	notices, err := ratelimit.New(ratelimit.Config{Rate: rate.Every(NoticeInterval), Burst: 1, MaxKeys: 100_000, Clock: cfg.Clock, Rand: cfg.Rand})
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, codeKey: cfg.Vault.DeriveKey("one-time codes"), notices: notices}, nil
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
// policy documents (Config.Policies), and returns its id; a worker then
// sends a verification code to each contact. If the acceptance cannot be
// recorded the account stands, and the user is asked to accept the
// documents at login, as after a material change. Invalid input is Invalid, with field
// "email", "mobile" or "password".
//
// Following OWASP's guidance on account enumeration, a sign-up with an
// email address or a mobile number another account holds answers exactly
// like one that creates an account, and does the same work (one password
// hash, two lookups, one insert, one queued job):
//
//   - if the email address is taken, no account is created, the id
//     returned belongs to no account, and the owner of the address is
//     told (by email) that someone tried to sign up with it;
//   - if only the mobile number is taken, the account is created with the
//     number stored but not attached to it (no blind index): no code goes
//     to the number, the account cannot verify it, and the number's owner
//     is told, by email.
//
// Owners are told at most once per contact per NoticeInterval.
func (s *Service) Signup(ctx context.Context, email, mobile, pw string) (string, error) {
	email, mobile, err := s.checkSignup(email, mobile, pw)
	if err != nil {
		return "", err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, pw)
	if err != nil {
		return "", fmt.Errorf("signup: %w", err)
	}
	id, err := ident.New(s.cfg.Rand, "acc")
	if err != nil {
		return "", err
	}
	a, err := s.sealAccount(id, email, mobile, hash)
	if err != nil {
		return "", fmt.Errorf("signup: %w", err)
	}
	created, err := s.create(ctx, a, email, mobile)
	if err != nil {
		return "", fmt.Errorf("signup: %w", err)
	}
	job := signupJob{Email: email, Mobile: mobile}
	if created {
		job.AccountID = id
		s.cfg.Logger.Info("account created", "account", id, "mobile_attached", a.MobileIndex != nil)
		if s.cfg.Policies != nil {
			if err := s.cfg.Policies.AcceptCurrent(ctx, id); err != nil {
				s.cfg.Logger.Warn("policy acceptance at sign-up not recorded", "account", id, "err", errs.CodeOf(err))
			}
		}
	} else {
		s.cfg.Logger.Info("sign-up with an email address in use; no account created")
	}
	if err := s.deferJob(ctx, JobSignup, job); err != nil {
		// The account exists; the user can ask for new codes.
		s.cfg.Logger.Warn("sign-up messages not queued", "err", errs.CodeOf(err))
	}
	return id, nil
}

// sealAccount returns a new active account id with its contacts sealed
// under a new data key, their blind indexes and the password hash.
func (s *Service) sealAccount(id, email, mobile, hash string) (*store.Account, error) {
	dk, wrapped, err := s.cfg.Vault.NewDataKey(id)
	if err != nil {
		return nil, err
	}
	defer dk.Destroy()
	emailSealed, err := dk.Seal([]byte(email), aad(id, "email"))
	if err != nil {
		return nil, err
	}
	mobileSealed, err := dk.Seal([]byte(mobile), aad(id, "mobile"))
	if err != nil {
		return nil, err
	}
	return &store.Account{
		ID:           id,
		EmailSealed:  emailSealed,
		MobileSealed: mobileSealed,
		WrappedKey:   wrapped,
		EmailIndex:   s.cfg.Vault.BlindIndex("email", email),
		MobileIndex:  s.cfg.Vault.BlindIndex("mobile", mobile),
		PasswordHash: hash,
		Status:       store.StatusActive,
		CreatedAt:    s.cfg.Clock(),
	}, nil
}

// create inserts a, leaving its mobile number unattached (a.MobileIndex
// nil) if another account holds it. It reports false, with a nil error, if
// the email address belongs to another account. Either way it looks both
// contacts up and tries the insert, so a taken address costs what a free
// one does.
//
// During a KEK rotation an account not yet re-indexed holds its contacts
// under an older KEK's index, which the store's unique indexes cannot see:
// such a contact counts as taken too (heldUnderOlderKEK).
func (s *Service) create(ctx context.Context, a *store.Account, email, mobile string) (bool, error) {
	emailOwner, err := s.ownerOf(ctx, store.Email, a.EmailIndex)
	if err != nil {
		return false, err
	}
	mobileOwner, err := s.ownerOf(ctx, store.Mobile, a.MobileIndex)
	if err != nil {
		return false, err
	}
	emailOld, err := s.heldUnderOlderKEK(ctx, store.Email, email)
	if err != nil {
		return false, err
	}
	mobileOld, err := s.heldUnderOlderKEK(ctx, store.Mobile, mobile)
	if err != nil {
		return false, err
	}
	if emailOld {
		return false, nil
	}
	if mobileOld {
		a.MobileIndex = nil
	}
	if mobileOwner != nil {
		a.MobileIndex = nil
	}
	// With a taken email the insert fails on its unique index; it runs
	// all the same, for the time it takes.
	err = s.cfg.Store.CreateAccount(ctx, a)
	if errs.Is(err, errs.Conflict) && emailOwner == nil && a.MobileIndex != nil {
		// The number was taken since the lookup.
		a.MobileIndex = nil
		err = s.cfg.Store.CreateAccount(ctx, a)
	}
	if errs.Is(err, errs.Conflict) {
		return false, nil
	}
	return err == nil, err
}

// ownerOfValue returns the active account that holds value (normalised) on
// channel ch, under the index of any KEK of the keyring (accountByIndex),
// or nil.
func (s *Service) ownerOfValue(ctx context.Context, ch store.Channel, value string) (*store.Account, error) {
	a, err := s.accountByIndex(ctx, ch, value)
	if errs.Is(err, errs.NotFound) {
		return nil, nil
	}
	return a, err
}

// ownerOf returns the active account whose blind index on channel ch is
// index, or nil.
func (s *Service) ownerOf(ctx context.Context, ch store.Channel, index []byte) (*store.Account, error) {
	var a *store.Account
	var err error
	if ch == store.Mobile {
		a, err = s.cfg.Store.AccountByMobileIndex(ctx, index)
	} else {
		a, err = s.cfg.Store.AccountByEmailIndex(ctx, index)
	}
	if errs.Is(err, errs.NotFound) {
		return nil, nil
	}
	return a, err
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
	rawEmail, rawMobile := email, mobile
	email, eErr := contact.NormalizeEmail(email)
	if eErr == nil {
		eErr = contact.CheckNewEmail(email)
	} else {
		email = rawEmail
	}
	mobile, mErr := contact.NormalizeMobile(mobile, s.cfg.MobileRegion)
	if mErr != nil {
		mobile = rawMobile
	}
	// The password is judged with the contacts it must not be built from.
	if err := errs.Join(eErr, mErr, password.Validate(pw, email, mobile)); err != nil {
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
	if ch == store.Mobile && a.MobileIndex == nil {
		return s.sendUnattached(ctx, a, purpose)
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
	if err := s.cfg.Store.SetVerified(ctx, accountID, ch); errs.Is(err, errs.Precondition) {
		// An unattached number: its code was never sent, so whoever
		// typed it guessed.
		return errs.Field(errs.Unauthenticated, "code", "wrong code")
	} else if err != nil {
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
// exists, and does the same work either way: it only queues the request
// (Config.Defer), and the worker looks the account up and, if there is
// one, emails it a token (RunResetRequest). An address that is not an
// email address at all is Invalid (field "email").
func (s *Service) RequestReset(ctx context.Context, email string) error {
	norm, err := contact.NormalizeEmail(email)
	if err != nil {
		return err
	}
	return s.deferJob(ctx, JobResetRequest, resetJob{Email: norm})
}

// Reset sets a new password with a reset token and ends every session of
// the account. The token is single-use, and using it revokes every other
// reset token of the account; an unknown, used or expired one is Gone
// (field "token"); a new password the policy refuses is Invalid (field
// "password"), with the account's contacts as the policy's context, and
// leaves the token usable. Using a token proves the account's email
// address, which is marked verified. It returns that address, so the
// caller can treat the client as one that logged in (a device token).
func (s *Service) Reset(ctx context.Context, token, newPassword string) (string, error) {
	gone := errs.Field(errs.Gone, "token", "the reset token is invalid or has expired")
	if err := password.Validate(newPassword); err != nil {
		return "", err
	}
	if token == "" || len(token) > 256 {
		return "", gone
	}
	accountID, err := s.cfg.Store.ResetTokenAccount(ctx, secret.Hash(token), s.cfg.Clock())
	if errs.Is(err, errs.Gone) {
		return "", gone
	}
	if err != nil {
		return "", err
	}
	if err := s.validateFor(ctx, accountID, newPassword); err != nil {
		return "", err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, newPassword)
	if err != nil {
		return "", err
	}
	if accountID, err = s.cfg.Store.ConsumeResetToken(ctx, secret.Hash(token), s.cfg.Clock()); err != nil {
		if errs.Is(err, errs.Gone) || errs.Is(err, errs.NotFound) {
			return "", gone
		}
		return "", err
	}
	if err := s.cfg.Store.SetPassword(ctx, accountID, hash); err != nil {
		return "", err
	}
	// The token reached the account's email: that proves the address.
	if err := s.cfg.Store.SetVerified(ctx, accountID, store.Email); err != nil {
		return "", err
	}
	s.cfg.Logger.Info("password reset", "account", accountID)
	a, err := s.cfg.Store.Account(ctx, accountID)
	if err != nil {
		return "", err
	}
	email, _, err := s.Contacts(a)
	return email, err
}

// validateFor applies the password policy to pw as the new password of
// the account, with its email address and mobile number as context.
func (s *Service) validateFor(ctx context.Context, accountID, pw string) error {
	v, err := s.CheckNewPassword(ctx, accountID, pw)
	if err != nil {
		return err
	}
	if !v.Acceptable {
		return errs.Field(errs.Invalid, "password", "%s", strings.Join(v.Feedback, " "))
	}
	return nil
}

// CheckNewPassword returns the policy's verdict on pw as a new password of
// the account, with its contacts as context (password.Check).
func (s *Service) CheckNewPassword(ctx context.Context, accountID, pw string) (password.Verdict, error) {
	a, err := s.cfg.Store.Account(ctx, accountID)
	if err != nil {
		return password.Verdict{}, err
	}
	email, mobile, err := s.Contacts(a)
	if err != nil {
		return password.Verdict{}, err
	}
	return password.Check(pw, email, mobile), nil
}

// CheckResetPassword is CheckNewPassword for the account of a live reset
// token, so the reset page's strength meter judges as Reset will. An
// unknown or expired token gives the verdict without context (and no
// error), which tells nothing about tokens.
func (s *Service) CheckResetPassword(ctx context.Context, token, pw string) password.Verdict {
	if token != "" && len(token) <= 256 {
		if id, err := s.cfg.Store.ResetTokenAccount(ctx, secret.Hash(token), s.cfg.Clock()); err == nil {
			if v, err := s.CheckNewPassword(ctx, id, pw); err == nil {
				return v
			}
		}
	}
	return password.Check(pw)
}

// ChangePassword replaces the password after checking the current one and
// ends all sessions (and revokes reset tokens); the caller issues a fresh
// session. A wrong current password is Unauthenticated with field
// "current_password", a new one the policy refuses Invalid with field
// "new_password".
func (s *Service) ChangePassword(ctx context.Context, accountID, current, next string) error {
	if err := s.CheckPassword(ctx, accountID, current); err != nil {
		return errs.WithField(err, "current_password")
	}
	if err := s.validateFor(ctx, accountID, next); err != nil {
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
