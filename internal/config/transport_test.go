package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestTransport: plain HTTP off loopback, SMTP without TLS off loopback
// and a metrics listener off loopback each need the operator to say so;
// errors name the flag.
func TestTransport(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(c *Settings)
		flag string // "" when valid
	}{
		{"default: loopback", func(c *Settings) {}, ""},
		{"localhost", func(c *Settings) { c.Listen = "localhost:8080" }, ""},
		{"IPv6 loopback", func(c *Settings) { c.Listen = "[::1]:8080" }, ""},
		{"every interface", func(c *Settings) { c.Listen = ":8080" }, "--listen"},
		{"0.0.0.0", func(c *Settings) { c.Listen = "0.0.0.0:8080" }, "--listen"},
		{"public address", func(c *Settings) { c.Listen = "198.18.0.1:8080" }, "--listen"},
		{"a host name", func(c *Settings) { c.Listen = "vpn.example.com:8080" }, "--listen"},
		{"behind a proxy", func(c *Settings) { c.Listen = "0.0.0.0:8080"; c.Transport.BehindProxy = true }, ""},
		{"insecure-http", func(c *Settings) { c.Listen = "0.0.0.0:8080"; c.Transport.InsecureHTTP = true }, ""},
		{"ACME", func(c *Settings) { c.Listen = ":443"; c.ACME.Domains = []string{"vpn.example.com"} }, ""},
		{"trusted proxy without behind-proxy", func(c *Settings) { c.Transport.TrustedProxy = []string{"127.0.0.1"} }, "--trusted-proxy needs --behind-proxy"},
		{"bad trusted proxy", func(c *Settings) { c.Transport.BehindProxy = true; c.Transport.TrustedProxy = []string{"proxy.local"} }, "--trusted-proxy"},
		{"trusted proxies", func(c *Settings) {
			c.Transport.BehindProxy = true
			c.Transport.TrustedProxy = []string{"127.0.0.1", "10.0.0.0/8", "::1"}
		}, ""},
		{"SMTP none to a remote relay", func(c *Settings) { c.SMTPHost, c.SMTPFrom, c.SMTPTLS = "mail.example.com", "a@example.com", "none" }, "--smtp-tls none"},
		{"SMTP opportunistic to a remote relay", func(c *Settings) {
			c.SMTPHost, c.SMTPFrom, c.SMTPTLS = "mail.example.com", "a@example.com", "opportunistic"
		}, "--smtp-insecure"},
		{"SMTP none, insecure accepted", func(c *Settings) {
			c.SMTPHost, c.SMTPFrom, c.SMTPTLS, c.Transport.SMTPInsecure = "mail.example.com", "a@example.com", "none", true
		}, ""},
		{"SMTP none to localhost", func(c *Settings) { c.SMTPHost, c.SMTPFrom, c.SMTPTLS = "localhost", "a@example.com", "none" }, ""},
		{"SMTP none to 127.0.0.1", func(c *Settings) { c.SMTPHost, c.SMTPFrom, c.SMTPTLS = "127.0.0.1", "a@example.com", "none" }, ""},
		{"SMTP starttls to a remote relay", func(c *Settings) { c.SMTPHost, c.SMTPFrom = "mail.example.com", "a@example.com" }, ""},
		{"no metrics listener", func(c *Settings) { c.Transport.MetricsListen = "" }, ""},
		{"metrics off loopback", func(c *Settings) { c.Transport.MetricsListen = "0.0.0.0:9190" }, "--metrics-listen"},
		{"metrics off loopback with a token", func(c *Settings) {
			c.Transport.MetricsListen, c.Transport.MetricsToken = "0.0.0.0:9190", strings.Repeat("t", MinMetricsToken)
		}, ""},
		{"short metrics token", func(c *Settings) { c.Transport.MetricsToken = "short" }, "--metrics-token"},
		{"metrics on the main address", func(c *Settings) { c.Transport.MetricsListen = c.Listen }, "--metrics-listen"},
		{"bad metrics address", func(c *Settings) { c.Transport.MetricsListen = "9190" }, "--metrics-listen"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := Default()
			s.DataDir = t.TempDir()
			c.set(&s)
			err := s.Validate()
			if c.flag == "" && err != nil {
				t.Fatalf("got %v, want valid", err)
			}
			if c.flag != "" && (err == nil || !strings.Contains(err.Error(), c.flag)) {
				t.Fatalf("got %v, want an error naming %s", err, c.flag)
			}
		})
	}
}

func TestTrustedProxiesParsed(t *testing.T) {
	s := Default()
	s.DataDir = t.TempDir()
	s.Transport.BehindProxy = true
	s.Transport.TrustedProxy = []string{"127.0.0.1", "10.1.2.3/8", "::ffff:192.0.2.1"}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}
	if !slices.Equal(s.Transport.TrustedProxies, want) {
		t.Fatalf("got %v, want %v", s.Transport.TrustedProxies, want)
	}
	if !s.SecureOrigin() {
		t.Fatal("behind a proxy, the origin is HTTPS")
	}
}

// TestMetricsTokenIsSecret: a config file that sets metrics-token must
// not be readable by others, like the other credentials.
func TestMetricsTokenIsSecret(t *testing.T) {
	file := writeFile(t, `metrics-token = "0123456789abcdef0123"`+"\n", 0o644)
	if _, _, err := parse(t, []string{"--config", file}, nil); err == nil || !strings.Contains(err.Error(), "metrics-token") {
		t.Fatalf("got %v, want a refusal naming metrics-token", err)
	}
}
