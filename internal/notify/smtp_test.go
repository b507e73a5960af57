package notify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/nitronet/nitronet/internal/errs"
)

const (
	testUser = "relay-user"
	testPass = "s3cret-relay-pa55"
	testFrom = "Nitronet <no-reply@vpn.example>"
)

// testCA is a self-signed certificate for 127.0.0.1 and a pool trusting it.
type testCA struct {
	cert tls.Certificate
	pool *x509.CertPool
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "nitronet test relay"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return testCA{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool: pool}
}

// received is one message the test relay accepted.
type received struct {
	from      string
	rcpts     []string
	data      []byte
	tlsAtMail bool
	user      string // authenticated user, "" if none
}

// authAttempt is one AUTH exchange the test relay saw.
type authAttempt struct {
	mech, user, pass string
	tls              bool
}

// relay is a real SMTP server (github.com/emersion/go-smtp) that records
// what it sees.
type relay struct {
	addr     string
	host     string
	port     int
	mechs    []string
	needAuth bool

	mu    sync.Mutex
	msgs  []received
	auths []authAttempt
}

type relayOpts struct {
	tls      *tls.Config // offered via STARTTLS, or nil for none
	implicit bool        // serve TLS from the first byte instead of STARTTLS
	needAuth bool        // refuse MAIL before AUTH
	mechs    []string    // SASL mechanisms offered; default PLAIN
}

func startRelay(t *testing.T, o relayOpts) *relay {
	t.Helper()
	r := &relay{needAuth: o.needAuth, mechs: o.mechs}
	if r.mechs == nil {
		r.mechs = []string{sasl.Plain}
	}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &relaySession{r: r, c: c}, nil
	}))
	s.Domain = "relay.test"
	s.ErrorLog = log.New(io.Discard, "", 0)
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	var ln net.Listener
	var err error
	if o.implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", o.tls)
	} else {
		s.TLSConfig = o.tls
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ln)
	}()
	t.Cleanup(func() {
		s.Close()
		// Serve may not have registered ln yet when Close runs, so close
		// it here too to end Serve's accept loop.
		ln.Close()
		<-done
	})
	r.addr = ln.Addr().String()
	host, port, _ := net.SplitHostPort(r.addr)
	r.host = host
	r.port, _ = strconv.Atoi(port)
	return r
}

func (r *relay) snapshot() ([]received, []authAttempt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.msgs...), append([]authAttempt(nil), r.auths...)
}

type relaySession struct {
	r    *relay
	c    *smtp.Conn
	user string
	cur  received
}

func (s *relaySession) isTLS() bool {
	_, ok := s.c.TLSConnectionState()
	return ok
}

func (s *relaySession) AuthMechanisms() []string { return s.r.mechs }

func (s *relaySession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		s.r.mu.Lock()
		s.r.auths = append(s.r.auths, authAttempt{mech: mech, user: user, pass: pass, tls: s.isTLS()})
		s.r.mu.Unlock()
		if user != testUser || pass != testPass {
			return errors.New("invalid credentials")
		}
		s.user = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnsupported
}

func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	if s.r.needAuth && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.cur = received{from: from, tlsAtMail: s.isTLS(), user: s.user}
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.rcpts = append(s.cur.rcpts, to)
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	s.r.mu.Lock()
	s.r.msgs = append(s.r.msgs, s.cur)
	s.r.mu.Unlock()
	return nil
}

func (s *relaySession) Reset()        { s.cur = received{} }
func (s *relaySession) Logout() error { return nil }

// loginServer is the server side of the (obsolete but common) LOGIN
// mechanism, which go-sasl only implements for clients.
type loginServer struct {
	check      func(user, pass string) error
	step       int
	user, pass string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if resp != nil { // initial response carries the username
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(resp)
		l.step++
		return []byte("Password:"), false, nil
	case 2:
		l.pass = string(resp)
		l.step++
		return nil, true, l.check(l.user, l.pass)
	}
	return nil, true, errors.New("unexpected LOGIN step")
}

// parsed is a received message decoded for assertions.
type parsed struct {
	header  netmail.Header
	subject string
	body    string
}

func parseMessage(t *testing.T, data []byte) parsed {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse received message: %v\n%s", err, data)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decode subject: %v", err)
	}
	var body io.Reader = msg.Body
	switch cte := strings.ToLower(msg.Header.Get("Content-Transfer-Encoding")); cte {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	case "", "7bit", "8bit":
	default:
		t.Fatalf("unexpected Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("decode body: %v", err)
	}
	return parsed{header: msg.Header, subject: subj, body: strings.ReplaceAll(string(b), "\r\n", "\n")}
}

func newTestSMTP(t *testing.T, r *relay, cfg SMTPConfig, logw io.Writer) *SMTP {
	t.Helper()
	cfg.Host = r.host
	cfg.Port = r.port
	if cfg.From == "" {
		cfg.From = testFrom
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	var lg *slog.Logger
	if logw != nil {
		lg = slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := NewSMTP(cfg, lg)
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	return s
}

func testEmail() Message {
	return Message{
		Channel: Email,
		To:      "alice@example.com",
		Subject: "Your Nitronet code — 483920",
		Body: "Hello,\n\nYour verification code is 483920.\n" +
			"This line is long enough that quoted-printable encoding has to wrap it, which the test decodes again: " +
			strings.Repeat("ü", 40) + "\n",
		Kind: "verify-code",
	}
}

// assertDelivered checks r received exactly m, authenticated as testUser
// over TLS if wantAuth.
func assertDelivered(t *testing.T, r *relay, m Message, wantAuth bool) received {
	t.Helper()
	msgs, auths := r.snapshot()
	if len(msgs) != 1 {
		t.Fatalf("messages received: got %d, want 1", len(msgs))
	}
	got := msgs[0]
	if len(got.rcpts) != 1 || got.rcpts[0] != m.To {
		t.Fatalf("envelope recipients: got %q, want [%q]", got.rcpts, m.To)
	}
	if got.from != "no-reply@vpn.example" {
		t.Fatalf("envelope sender: got %q, want %q", got.from, "no-reply@vpn.example")
	}
	p := parseMessage(t, got.data)
	if to := p.header.Get("To"); !strings.Contains(to, m.To) {
		t.Fatalf("To header: got %q, want it to contain %q", to, m.To)
	}
	if p.subject != m.Subject {
		t.Fatalf("subject: got %q, want %q", p.subject, m.Subject)
	}
	if p.body != m.Body {
		t.Fatalf("body: got %q, want %q", p.body, m.Body)
	}
	if id := p.header.Get("Message-Id"); !strings.HasSuffix(id, "@vpn.example>") {
		t.Fatalf("Message-ID: got %q, want one at the sender's domain", id)
	}
	if ua := p.header.Get("User-Agent") + p.header.Get("X-Mailer"); ua != "" {
		t.Fatalf("User-Agent/X-Mailer: got %q, want none", ua)
	}
	if wantAuth {
		if len(auths) != 1 {
			t.Fatalf("AUTH attempts: got %d, want 1", len(auths))
		}
		a := auths[0]
		if a.user != testUser || a.pass != testPass {
			t.Fatalf("AUTH credentials: got %q/%q, want %q/%q", a.user, a.pass, testUser, testPass)
		}
		if !a.tls {
			t.Fatalf("AUTH over TLS: got false, want true")
		}
		if got.user != testUser {
			t.Fatalf("MAIL as user: got %q, want %q", got.user, testUser)
		}
	} else if len(auths) != 0 {
		t.Fatalf("AUTH attempts: got %d, want 0", len(auths))
	}
	return got
}

func TestSMTPStartTLSWithAuth(t *testing.T) {
	ca := newTestCA(t)
	for _, mech := range []string{sasl.Plain, sasl.Login} {
		t.Run(mech, func(t *testing.T) {
			r := startRelay(t, relayOpts{
				tls:      &tls.Config{Certificates: []tls.Certificate{ca.cert}},
				needAuth: true,
				mechs:    []string{mech},
			})
			var logs bytes.Buffer
			s := newTestSMTP(t, r, SMTPConfig{
				Username:  testUser,
				Password:  testPass,
				TLSConfig: &tls.Config{RootCAs: ca.pool},
			}, &logs)
			m := testEmail()
			if err := s.Send(t.Context(), m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := assertDelivered(t, r, m, true)
			if !got.tlsAtMail {
				t.Fatalf("MAIL over TLS: got false, want true")
			}
			_, auths := r.snapshot()
			if auths[0].mech != mech {
				t.Fatalf("AUTH mechanism: got %q, want %q", auths[0].mech, mech)
			}
			assertLogClean(t, logs.String(), m, "email sent")
		})
	}
}

// assertLogClean checks the log mentions the kind and outcome and no
// personal data or credentials.
func assertLogClean(t *testing.T, logs string, m Message, outcome string) {
	t.Helper()
	if !strings.Contains(logs, `"kind":"`+m.Kind+`"`) || !strings.Contains(logs, outcome) {
		t.Fatalf("log: got %q, want kind %q and %q", logs, m.Kind, outcome)
	}
	for _, secret := range []string{m.To, "483920", m.Subject, "Hello", testUser, testPass, "example.com"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("log %q contains %q, want no recipients, bodies, codes or credentials", logs, secret)
		}
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	ca := newTestCA(t)
	r := startRelay(t, relayOpts{
		tls:      &tls.Config{Certificates: []tls.Certificate{ca.cert}},
		implicit: true,
		needAuth: true,
	})
	s := newTestSMTP(t, r, SMTPConfig{
		Username:  testUser,
		Password:  testPass,
		TLSPolicy: TLSImplicit,
		TLSConfig: &tls.Config{RootCAs: ca.pool},
	}, nil)
	m := testEmail()
	if err := s.Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := assertDelivered(t, r, m, true); !got.tlsAtMail {
		t.Fatalf("MAIL over TLS: got false, want true")
	}
}

func TestSMTPMandatoryStartTLSRefusesPlainServer(t *testing.T) {
	// The server offers AUTH in the clear but no STARTTLS.
	r := startRelay(t, relayOpts{tls: nil})
	for _, tc := range []struct {
		name string
		cfg  SMTPConfig
	}{
		{"default policy with auth", SMTPConfig{Username: testUser, Password: testPass}},
		{"explicit starttls without auth", SMTPConfig{TLSPolicy: TLSStartTLS}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := newTestSMTP(t, r, tc.cfg, &logs)
			m := testEmail()
			err := s.Send(t.Context(), m)
			if err == nil {
				t.Fatalf("Send: got nil error, want STARTTLS refusal")
			}
			if c := errs.CodeOf(err); c != errs.Unavailable {
				t.Fatalf("error code: got %q, want %q", c, errs.Unavailable)
			}
			if !strings.Contains(err.Error(), "STARTTLS") {
				t.Fatalf("error: got %q, want it to mention STARTTLS", err)
			}
			if strings.Contains(err.Error(), m.To) {
				t.Fatalf("error %q contains the recipient", err)
			}
			msgs, auths := r.snapshot()
			if len(msgs) != 0 || len(auths) != 0 {
				t.Fatalf("server saw %d messages and %d AUTH attempts, want none", len(msgs), len(auths))
			}
			assertLogClean(t, logs.String(), m, "email not sent")
		})
	}
}

func TestSMTPOpportunistic(t *testing.T) {
	ca := newTestCA(t)
	t.Run("upgrades when offered", func(t *testing.T) {
		r := startRelay(t, relayOpts{tls: &tls.Config{Certificates: []tls.Certificate{ca.cert}}, needAuth: true})
		s := newTestSMTP(t, r, SMTPConfig{
			Username: testUser, Password: testPass,
			TLSPolicy: TLSOpportunistic, TLSConfig: &tls.Config{RootCAs: ca.pool},
		}, nil)
		m := testEmail()
		if err := s.Send(t.Context(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if got := assertDelivered(t, r, m, true); !got.tlsAtMail {
			t.Fatalf("MAIL over TLS: got false, want true")
		}
	})
	t.Run("plain text without credentials", func(t *testing.T) {
		r := startRelay(t, relayOpts{tls: nil})
		s := newTestSMTP(t, r, SMTPConfig{TLSPolicy: TLSOpportunistic}, nil)
		m := testEmail()
		if err := s.Send(t.Context(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if got := assertDelivered(t, r, m, false); got.tlsAtMail {
			t.Fatalf("MAIL over TLS: got true, want false (server has no TLS)")
		}
	})
	t.Run("never sends credentials in the clear", func(t *testing.T) {
		r := startRelay(t, relayOpts{tls: nil})
		s := newTestSMTP(t, r, SMTPConfig{TLSPolicy: TLSOpportunistic, Username: testUser, Password: testPass}, nil)
		err := s.Send(t.Context(), testEmail())
		if err == nil {
			t.Fatalf("Send: got nil error, want refusal to authenticate without TLS")
		}
		if !errors.Is(err, errNoTLSForAuth) {
			t.Fatalf("error: got %v, want %v", err, errNoTLSForAuth)
		}
		msgs, auths := r.snapshot()
		if len(msgs) != 0 || len(auths) != 0 {
			t.Fatalf("server saw %d messages and %d AUTH attempts, want none", len(msgs), len(auths))
		}
	})
}

func TestSMTPNoTLS(t *testing.T) {
	r := startRelay(t, relayOpts{tls: nil})
	s := newTestSMTP(t, r, SMTPConfig{TLSPolicy: TLSNone}, nil)
	m := testEmail()
	if err := s.Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	assertDelivered(t, r, m, false)
}

func TestSMTPFailures(t *testing.T) {
	ca := newTestCA(t)
	r := startRelay(t, relayOpts{tls: &tls.Config{Certificates: []tls.Certificate{ca.cert}}, needAuth: true})
	tests := []struct {
		name string
		cfg  SMTPConfig
	}{
		{"wrong password", SMTPConfig{Username: testUser, Password: "wrong-pa55word", TLSConfig: &tls.Config{RootCAs: ca.pool}}},
		{"untrusted certificate", SMTPConfig{Username: testUser, Password: testPass}},
		{"wrong server name", SMTPConfig{Username: testUser, Password: testPass, TLSConfig: &tls.Config{RootCAs: ca.pool, ServerName: "relay.example"}}},
		{"auth required but not configured", SMTPConfig{TLSConfig: &tls.Config{RootCAs: ca.pool}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestSMTP(t, r, tc.cfg, nil)
			m := testEmail()
			err := s.Send(t.Context(), m)
			if err == nil {
				t.Fatalf("Send: got nil error, want one")
			}
			if c := errs.CodeOf(err); c != errs.Unavailable {
				t.Fatalf("error code: got %q, want %q", c, errs.Unavailable)
			}
			for _, secret := range []string{m.To, "wrong-pa55word", testPass} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q contains %q", err, secret)
				}
			}
		})
	}
	if msgs, _ := r.snapshot(); len(msgs) != 0 {
		t.Fatalf("messages received: got %d, want 0", len(msgs))
	}
}

func TestSMTPContextCancelled(t *testing.T) {
	r := startRelay(t, relayOpts{tls: nil})
	s := newTestSMTP(t, r, SMTPConfig{TLSPolicy: TLSNone}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Send(ctx, testEmail()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with cancelled context: got %v, want context.Canceled", err)
	}
}

func TestSMTPConcurrent(t *testing.T) {
	ca := newTestCA(t)
	r := startRelay(t, relayOpts{tls: &tls.Config{Certificates: []tls.Certificate{ca.cert}}, needAuth: true})
	s := newTestSMTP(t, r, SMTPConfig{Username: testUser, Password: testPass, TLSConfig: &tls.Config{RootCAs: ca.pool}}, nil)
	const n = 8
	errc := make(chan error, n)
	for i := range n {
		go func() {
			m := testEmail()
			m.To = fmt.Sprintf("user%d@example.com", i)
			errc <- s.Send(t.Context(), m)
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	msgs, _ := r.snapshot()
	if len(msgs) != n {
		t.Fatalf("messages received: got %d, want %d", len(msgs), n)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m.rcpts[0]] = true
	}
	if len(seen) != n {
		t.Fatalf("distinct recipients: got %d, want %d", len(seen), n)
	}
}

func TestSMTPRejectsBadMessages(t *testing.T) {
	r := startRelay(t, relayOpts{tls: nil})
	s := newTestSMTP(t, r, SMTPConfig{TLSPolicy: TLSNone}, nil)
	tests := []struct {
		name string
		edit func(*Message)
	}{
		{"sms channel", func(m *Message) { m.Channel = SMS }},
		{"no recipient", func(m *Message) { m.To = "" }},
		{"bad recipient", func(m *Message) { m.To = "not an address" }},
		{"header injection in subject", func(m *Message) { m.Subject = "hi\r\nBcc: eve@example.com" }},
		{"header injection in recipient", func(m *Message) { m.To = "alice@example.com\r\nBcc: eve@example.com" }},
		{"bad kind", func(m *Message) { m.Kind = "Verify Code" }},
		{"empty kind", func(m *Message) { m.Kind = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := testEmail()
			tc.edit(&m)
			err := s.Send(t.Context(), m)
			if c := errs.CodeOf(err); c != errs.Invalid {
				t.Fatalf("Send: got %v (code %q), want code %q", err, c, errs.Invalid)
			}
		})
	}
	if msgs, _ := r.snapshot(); len(msgs) != 0 {
		t.Fatalf("messages received: got %d, want 0", len(msgs))
	}
}

func TestNewSMTPConfig(t *testing.T) {
	base := SMTPConfig{Host: "smtp.example", From: testFrom}
	bad := []struct {
		name string
		edit func(*SMTPConfig)
	}{
		{"no host", func(c *SMTPConfig) { c.Host = "" }},
		{"host with space", func(c *SMTPConfig) { c.Host = "smtp example" }},
		{"no from", func(c *SMTPConfig) { c.From = "" }},
		{"bad from", func(c *SMTPConfig) { c.From = "not an address" }},
		{"unknown policy", func(c *SMTPConfig) { c.TLSPolicy = "STARTTLS-ish" }},
		{"bad port", func(c *SMTPConfig) { c.Port = 70000 }},
		{"negative port", func(c *SMTPConfig) { c.Port = -1 }},
		{"password without user", func(c *SMTPConfig) { c.Password = "x" }},
		{"credentials without TLS", func(c *SMTPConfig) { c.TLSPolicy = TLSNone; c.Username = "u"; c.Password = "p" }},
		{"negative timeout", func(c *SMTPConfig) { c.Timeout = -time.Second }},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			if s, err := NewSMTP(cfg, nil); err == nil {
				t.Fatalf("NewSMTP: got %+v, nil error; want an error", s)
			}
		})
	}

	good := []struct {
		policy   string
		wantPort int
	}{
		{"", 587}, {TLSStartTLS, 587}, {TLSOpportunistic, 587}, {TLSImplicit, 465}, {TLSNone, 25},
	}
	for _, tc := range good {
		t.Run("port/"+tc.policy, func(t *testing.T) {
			cfg := base
			cfg.TLSPolicy = tc.policy
			s, err := NewSMTP(cfg, nil)
			if err != nil {
				t.Fatalf("NewSMTP: %v", err)
			}
			if s.port != tc.wantPort {
				t.Fatalf("port: got %d, want %d", s.port, tc.wantPort)
			}
			if s.timeout != DefaultSMTPTimeout {
				t.Fatalf("timeout: got %v, want %v", s.timeout, DefaultSMTPTimeout)
			}
		})
	}

	t.Run("TLS config is cloned and hardened", func(t *testing.T) {
		in := &tls.Config{MinVersion: tls.VersionTLS10}
		cfg := base
		cfg.TLSConfig = in
		s, err := NewSMTP(cfg, nil)
		if err != nil {
			t.Fatalf("NewSMTP: %v", err)
		}
		if s.tlsConfig == in {
			t.Fatalf("TLS config: got the caller's value, want a clone")
		}
		if s.tlsConfig.MinVersion != tls.VersionTLS12 {
			t.Fatalf("MinVersion: got %#x, want %#x", s.tlsConfig.MinVersion, tls.VersionTLS12)
		}
		if s.tlsConfig.ServerName != "smtp.example" {
			t.Fatalf("ServerName: got %q, want %q", s.tlsConfig.ServerName, "smtp.example")
		}
		if in.MinVersion != tls.VersionTLS10 || in.ServerName != "" {
			t.Fatalf("caller's TLS config was modified")
		}
	})
}
