package notify

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"slices"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
	mailsmtp "github.com/wneessen/go-mail/smtp"

	"github.com/nitronet/nitronet/internal/errs"
)

// The SMTPConfig.TLSPolicy values.
const (
	TLSStartTLS      = "starttls"      // STARTTLS is mandatory (the default)
	TLSOpportunistic = "opportunistic" // STARTTLS if the server offers it
	TLSImplicit      = "tls"           // TLS from the first byte ("SMTPS")
	TLSNone          = "none"          // plain text; no credentials allowed
)

// DefaultSMTPTimeout is the SMTPConfig.Timeout used when it is zero.
const DefaultSMTPTimeout = 30 * time.Second

// SMTPConfig configures an SMTP notifier.
type SMTPConfig struct {
	// Host is the relay's host name or IP address. It is also the name
	// the relay's certificate is verified against, unless TLSConfig sets
	// ServerName.
	Host string
	// Port is the relay's port. Zero means 587 for "starttls" and
	// "opportunistic", 465 for "tls" and 25 for "none".
	Port int
	// Username and Password are the SMTP AUTH credentials. If Username is
	// empty no authentication is attempted. Credentials are only ever sent
	// over TLS, using PLAIN if the server offers it and LOGIN otherwise.
	Username, Password string
	// From is the sender, such as "Nitronet <no-reply@vpn.example>".
	From string
	// TLSPolicy is one of "starttls" (mandatory STARTTLS; the default if
	// empty), "opportunistic", "tls" (implicit TLS) or "none".
	TLSPolicy string
	// TLSConfig, if not nil, is cloned and used for TLS; set RootCAs to
	// trust a private CA. TLS 1.2 is the minimum either way.
	TLSConfig *tls.Config
	// Timeout bounds connecting and each SMTP exchange. Zero means
	// DefaultSMTPTimeout.
	Timeout time.Duration
}

// SMTP is a Notifier that sends email through an SMTP relay. It opens one
// connection per message. It is safe for concurrent use.
type SMTP struct {
	host       string
	port       int
	user, pass string
	from       string
	fromDomain string
	implicit   bool
	policy     mail.TLSPolicy
	tlsConfig  *tls.Config
	timeout    time.Duration
	log        *slog.Logger
}

// NewSMTP returns an SMTP notifier for cfg, or an error if cfg is invalid.
// It does not connect to the relay. log receives one record per message
// with its Kind and outcome; a nil log discards them.
func NewSMTP(cfg SMTPConfig, log *slog.Logger) (*SMTP, error) {
	if cfg.Host == "" || strings.ContainsFunc(cfg.Host, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, errors.New("notify: smtp: invalid or missing host")
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("notify: smtp: invalid From address: %w", err)
	}
	s := &SMTP{
		host:       cfg.Host,
		port:       cfg.Port,
		user:       cfg.Username,
		pass:       cfg.Password,
		from:       cfg.From,
		fromDomain: from.Address[strings.LastIndexByte(from.Address, '@')+1:],
		timeout:    cfg.Timeout,
		log:        log,
	}
	var defaultPort int
	switch cfg.TLSPolicy {
	case "", TLSStartTLS:
		s.policy, defaultPort = mail.TLSMandatory, 587
	case TLSOpportunistic:
		s.policy, defaultPort = mail.TLSOpportunistic, 587
	case TLSImplicit:
		s.policy, defaultPort, s.implicit = mail.TLSMandatory, 465, true
	case TLSNone:
		s.policy, defaultPort = mail.NoTLS, 25
	default:
		return nil, fmt.Errorf("notify: smtp: unknown TLS policy %q", cfg.TLSPolicy)
	}
	if s.port == 0 {
		s.port = defaultPort
	}
	if s.port < 1 || s.port > 65535 {
		return nil, fmt.Errorf("notify: smtp: invalid port %d", s.port)
	}
	if s.user == "" && s.pass != "" {
		return nil, errors.New("notify: smtp: password set without username")
	}
	if s.user != "" && s.policy == mail.NoTLS {
		return nil, errors.New("notify: smtp: credentials require TLS; use TLS policy starttls, opportunistic or tls")
	}
	switch {
	case s.timeout == 0:
		s.timeout = DefaultSMTPTimeout
	case s.timeout < 0:
		return nil, errors.New("notify: smtp: negative timeout")
	}
	if cfg.TLSConfig != nil {
		s.tlsConfig = cfg.TLSConfig.Clone()
	} else {
		s.tlsConfig = &tls.Config{}
	}
	if s.tlsConfig.ServerName == "" {
		s.tlsConfig.ServerName = cfg.Host
	}
	if s.tlsConfig.MinVersion < tls.VersionTLS12 {
		s.tlsConfig.MinVersion = tls.VersionTLS12
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Send sends m, whose Channel must be Email, as a plain-text UTF-8 email.
//
// It returns an *errs.Error with code errs.Invalid if m is malformed, and
// one with code errs.Unavailable if the relay could not be reached or
// refused the message; the text of the latter never contains the recipient.
// Send honours ctx's deadline and cancellation.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if err := m.validate(Email); err != nil {
		return err
	}
	err := s.send(ctx, m)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "email not sent", slog.String("kind", m.Kind))
		return err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "email sent", slog.String("kind", m.Kind))
	return nil
}

func (s *SMTP) send(ctx context.Context, m Message) error {
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.From(s.from); err != nil {
		return sendFailed("smtp from", m, err)
	}
	if err := msg.To(m.To); err != nil {
		return errs.E(errs.Invalid, "invalid email recipient")
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(mail.TypeTextPlain, m.Body)
	msg.SetDate()
	// go-mail's own Message-ID names this host; use the sender's domain.
	var id [16]byte
	if _, err := crand.Read(id[:]); err != nil {
		return sendFailed("smtp message-id", m, err)
	}
	msg.SetMessageIDWithValue(hex.EncodeToString(id[:]) + "@" + s.fromDomain)

	opts := []mail.Option{
		mail.WithPort(s.port),
		mail.WithTimeout(s.timeout),
		mail.WithTLSPolicy(s.policy),
		mail.WithTLSConfig(s.tlsConfig),
	}
	if s.implicit {
		opts = append(opts, mail.WithSSL())
	}
	if s.user != "" {
		opts = append(opts, mail.WithSMTPAuthCustom(&tlsOnlyAuth{user: s.user, pass: s.pass, host: s.host}))
	}
	// A fresh client per message keeps Send safe for concurrent use: a
	// go-mail Client holds per-connection state.
	c, err := mail.NewClient(s.host, opts...)
	if err != nil {
		return sendFailed("smtp client", m, err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return sendFailed("smtp send", m, err)
	}
	return nil
}

// errNoTLSForAuth is returned instead of sending credentials in the clear.
var errNoTLSForAuth = errors.New("refusing to send SMTP credentials over an unencrypted connection")

// tlsOnlyAuth is SMTP AUTH with PLAIN, or LOGIN if the server lacks PLAIN,
// that refuses to run on a connection without TLS, even to localhost. One
// value serves one authentication exchange.
type tlsOnlyAuth struct {
	user, pass, host string
	inner            mailsmtp.Auth
}

// Start implements go-mail's smtp.Auth.
func (a *tlsOnlyAuth) Start(si *mailsmtp.ServerInfo) (string, []byte, error) {
	if !si.TLS {
		return "", nil, errNoTLSForAuth
	}
	switch {
	case slices.Contains(si.Auth, "PLAIN"):
		a.inner = mailsmtp.PlainAuth("", a.user, a.pass, a.host, false)
	case slices.Contains(si.Auth, "LOGIN"):
		a.inner = mailsmtp.LoginAuth(a.user, a.pass, a.host, false)
	default:
		return "", nil, errors.New("server offers neither PLAIN nor LOGIN authentication")
	}
	return a.inner.Start(si)
}

// Next implements go-mail's smtp.Auth.
func (a *tlsOnlyAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if a.inner == nil {
		return nil, errors.New("authentication not started")
	}
	return a.inner.Next(fromServer, more)
}
