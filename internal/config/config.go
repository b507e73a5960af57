// Package config holds `nitronet serve`'s settings: each is a flag, may be
// set by an environment variable NITRONET_<FLAG_NAME>, has a documented
// default, and is validated at start with a clear error.
//
// A flag given on the command line wins over the environment.
package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/spf13/pflag"
)

// Serve is the control server's configuration.
type Serve struct {
	DataDir      string
	Listen       string
	TLSCert      string // PEM certificate chain; with TLSKey, serve HTTPS
	TLSKey       string
	Database     string // "" = SQLite in DataDir; postgres://… = PostgreSQL
	KEKFile      string // "" = DataDir/kek
	PoolV4       string
	PoolV6       string
	DeviceLimit  int
	MobileRegion string
	SessionTTL   time.Duration
	PortalURL    string
	LogFormat    string
	LogLevel     string
	// UsageRecording is "intervals" (default) or "none" (live count only).
	UsageRecording string

	SMTPHost     string
	SMTPPort     int
	SMTPUsername string
	SMTPPassword string
	SMTPFrom     string
	SMTPTLS      string

	SMSWebhook      string
	SMSWebhookToken string

	// Retention holds CATEGORY=DAYS overrides of the retention rules
	// (package retention; docs/retention.md).
	Retention []string

	// Filled in by Validate.
	V4 netip.Prefix
	V6 netip.Prefix
}

// Default returns a Serve with every setting at its documented default
// (the flag defaults, so they are defined in one place).
func Default() Serve {
	var c Serve
	c.Bind(pflag.NewFlagSet("defaults", pflag.ContinueOnError))
	return c
}

// EnvName returns the environment variable for a flag name.
func EnvName(flag string) string {
	return "NITRONET_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Bind registers c's flags on fs with their defaults.
func (c *Serve) Bind(fs *pflag.FlagSet) {
	fs.StringVar(&c.DataDir, "data", "./nitronet-data", "data directory: SQLite database, key-encryption key, outbox")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS with --tls-key")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key file for --tls-cert")
	fs.StringVar(&c.Database, "database", "", "PostgreSQL URL (postgres://…); empty uses SQLite in the data directory")
	fs.StringVar(&c.KEKFile, "kek-file", "", "key-encryption key file (default DATA/kek, created mode 0600)")
	fs.StringVar(&c.PoolV4, "pool-v4", "100.64.0.0/10", "IPv4 pool for device tunnel addresses")
	fs.StringVar(&c.PoolV6, "pool-v6", "fd00:6e6e::/48", "IPv6 ULA prefix for device tunnel addresses")
	fs.IntVar(&c.DeviceLimit, "device-limit", 5, "devices per account")
	fs.StringVar(&c.MobileRegion, "mobile-region", "", "default region (e.g. GB) for mobile numbers without +country code; empty requires E.164")
	fs.DurationVar(&c.SessionTTL, "session-ttl", 7*24*time.Hour, "lifetime of a login token")
	fs.StringVar(&c.PortalURL, "portal-url", "", "public base URL of this server, used in messages")
	fs.StringVar(&c.UsageRecording, "usage-recording", "intervals", "session recording: intervals (device, region, start, end per minute) or none (only a live count in memory)")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.SMTPHost, "smtp-host", "", "SMTP relay host; empty writes email to DATA/outbox")
	fs.IntVar(&c.SMTPPort, "smtp-port", 587, "SMTP relay port")
	fs.StringVar(&c.SMTPUsername, "smtp-username", "", "SMTP AUTH user name")
	fs.StringVar(&c.SMTPPassword, "smtp-password", "", "SMTP AUTH password (prefer NITRONET_SMTP_PASSWORD)")
	fs.StringVar(&c.SMTPFrom, "smtp-from", "", "From address for email")
	fs.StringVar(&c.SMTPTLS, "smtp-tls", "starttls", "SMTP TLS: starttls (required), tls (implicit), opportunistic or none")
	fs.StringVar(&c.SMSWebhook, "sms-webhook", "", "HTTPS URL that sends SMS (POST {to, body}); empty writes SMS to DATA/outbox")
	fs.StringVar(&c.SMSWebhookToken, "sms-webhook-token", "", "Bearer token for the SMS webhook (prefer NITRONET_SMS_WEBHOOK_TOKEN)")
	fs.StringArrayVar(&c.Retention, "retention", nil, "retention override CATEGORY=DAYS, repeatable (e.g. usage.sessions=30); see docs/retention.md")
}

// ApplyEnv sets every flag not given on the command line from its
// environment variable, if set. It returns an error naming the variable
// when a value does not parse.
func ApplyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", EnvName(f.Name), e)
			}
		}
	})
	return err
}

// Validate checks c and fills in derived fields. Errors name the flag.
func (c *Serve) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("--data must not be empty")
	}
	if c.KEKFile == "" {
		c.KEKFile = filepath.Join(c.DataDir, "kek")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT", c.Listen)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if c.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %v", err)
		}
	}
	if c.Database != "" {
		u, err := url.Parse(c.Database)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return fmt.Errorf("--database: want a postgres:// URL")
		}
	}
	var err error
	if c.V4, err = netip.ParsePrefix(c.PoolV4); err != nil || !c.V4.Addr().Is4() || c.V4.Bits() > 30 {
		return fmt.Errorf("--pool-v4 %q: want an IPv4 prefix of /30 or larger", c.PoolV4)
	}
	c.V4 = c.V4.Masked()
	if c.V6, err = netip.ParsePrefix(c.PoolV6); err != nil || !c.V6.Addr().Is6() || c.V6.Bits() > 120 ||
		!netip.MustParsePrefix("fc00::/7").Contains(c.V6.Addr()) {
		return fmt.Errorf("--pool-v6 %q: want a ULA (fc00::/7) IPv6 prefix of /120 or larger", c.PoolV6)
	}
	c.V6 = c.V6.Masked()
	if c.DeviceLimit < 1 || c.DeviceLimit > 1000 {
		return fmt.Errorf("--device-limit must be 1 to 1000")
	}
	if r := strings.ToUpper(strings.TrimSpace(c.MobileRegion)); r != "" && phonenumbers.GetCountryCodeForRegion(r) == 0 {
		// Otherwise every sign-up would fail with an internal error.
		return fmt.Errorf("--mobile-region %q: want a region code such as GB, or empty", c.MobileRegion)
	}
	if c.SessionTTL < time.Minute || c.SessionTTL > 365*24*time.Hour {
		return fmt.Errorf("--session-ttl must be between 1m and 8760h")
	}
	if c.PortalURL != "" {
		if u, err := url.Parse(c.PortalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--portal-url: want an http(s) URL")
		}
	}
	switch c.UsageRecording {
	case "intervals", "none":
	default:
		return fmt.Errorf("--usage-recording must be intervals or none")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format must be text or json")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level must be debug, info, warn or error")
	}
	if c.SMTPHost != "" {
		if c.SMTPFrom == "" {
			return fmt.Errorf("--smtp-from is required with --smtp-host")
		}
		if c.SMTPPort < 1 || c.SMTPPort > 65535 {
			return fmt.Errorf("--smtp-port must be 1 to 65535")
		}
		switch c.SMTPTLS {
		case "starttls", "tls", "opportunistic", "none":
		default:
			return fmt.Errorf("--smtp-tls must be starttls, tls, opportunistic or none")
		}
	}
	if c.SMSWebhook != "" {
		u, err := url.Parse(c.SMSWebhook)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("--sms-webhook: want an http(s) URL")
		}
	}
	return nil
}

// GatewayAddrs returns the gateway's own tunnel addresses: the first host
// of each pool (devices are numbered from the second). Gateways answer DNS
// on them.
func (c *Serve) GatewayAddrs() []netip.Addr {
	return []netip.Addr{c.V4.Addr().Next(), c.V6.Addr().Next()}
}
