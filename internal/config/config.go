// Package config holds the control server's settings: one type, Settings,
// used by `nitronet serve` and by every `nitronet admin` command, so that an
// admin command reaches the same database, key-encryption key, mail relay
// and SMS webhook as the server.
//
// Every setting is a flag with a documented default. Load fills the
// settings in one order of precedence: a flag given on the command line,
// then the environment variable NITRONET_<FLAG_NAME>, then the optional
// configuration file (--config FILE, or NITRONET_CONFIG), then the default.
// Validate checks the result; its errors name the flag.
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

	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nyaruka/phonenumbers"
	"github.com/spf13/pflag"
)

// Settings are the control server's settings.
type Settings struct {
	// ConfigFile is the optional TOML configuration file (see Load).
	ConfigFile string

	DataDir string
	Listen  string
	TLSCert string // PEM certificate chain; with TLSKey, serve HTTPS
	TLSKey  string
	// ACME holds the automatic TLS settings (--acme-*); see ACME.
	ACME ACME
	// Transport says when plain HTTP is allowed, what a proxy in front is
	// trusted with, and where metrics are served; see Transport.
	Transport Transport
	Database  string // "" = SQLite in DataDir; postgres://… = PostgreSQL
	// Keyring is the directory of key-encryption keys ("" = DataDir/keyring);
	// KEKFile the single KEK file of versions before keyrings ("" =
	// DataDir/kek), used as KEK 0 while it exists. KEKRotation is how
	// often the KEK is rotated (0: only by hand); KEKSettle how long a
	// rotation waits, after its new KEK became the primary, before it
	// verifies and destroys the old one.
	Keyring      string
	KEKFile      string
	KEKRotation  time.Duration
	KEKSettle    time.Duration
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

	// StatsBudget is the privacy budget (epsilon) each calendar quarter's
	// statistical reports may spend together (package stats).
	StatsBudget float64

	// Controller is who runs this installation and answers for its
	// personal data (the --controller-* settings).
	Controller controller.Identity

	// Gateway configures the gateway `serve` runs in its own process; its
	// Mode is empty when there is none.
	Gateway Gateway

	// Filled in by Validate.
	V4 netip.Prefix
	V6 netip.Prefix
}

// MaxStatsBudget is the largest --stats-budget: beyond it differential
// privacy protects nobody.
const MaxStatsBudget = 100

// annotation marks the flags that are settings, so that Load fills only
// those from the environment and the file, never a command's own flags.
const annotation = "nitronet-setting"

// Default returns Settings with every setting at its documented default
// (the flag defaults, so they are defined in one place).
func Default() Settings {
	var c Settings
	c.Bind(pflag.NewFlagSet("defaults", pflag.ContinueOnError))
	return c
}

// EnvName returns the environment variable for a flag name.
func EnvName(flag string) string {
	return "NITRONET_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Bind registers c's flags on fs with their defaults, and marks them as
// settings for Load.
func (c *Settings) Bind(fs *pflag.FlagSet) {
	mark := markSettings(fs)
	defer mark()
	fs.StringVar(&c.ConfigFile, "config", "", "TOML configuration file; flags and NITRONET_* variables override it (env NITRONET_CONFIG)")
	fs.StringVar(&c.DataDir, "data", "./nitronet-data", "data directory: SQLite database, key-encryption key, outbox")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS with --tls-key")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key file for --tls-cert")
	c.ACME.bind(fs)
	c.Transport.bind(fs)
	fs.StringVar(&c.Database, "database", "", "PostgreSQL URL (postgres://…); empty uses SQLite in the data directory")
	fs.StringVar(&c.Keyring, "keyring", "", "key-encryption keyring directory (default DATA/keyring, created mode 0700); keep it out of database backups, and share it between replicas")
	fs.StringVar(&c.KEKFile, "kek-file", "", "key-encryption key file of versions before keyrings (default DATA/kek): read while it exists, destroyed by the first rotation")
	fs.DurationVar(&c.KEKRotation, "kek-rotation", inventory.DefaultKEKRotationDays*24*time.Hour, "rotate the key-encryption key this often, destroying the old one (0: only with admin kek rotate); a backup becomes unreadable at most this long after an erasure")
	fs.DurationVar(&c.KEKSettle, "kek-settle", 2*time.Minute, "how long a rotation waits for requests in flight, on every process sharing the keyring, before it destroys the old key-encryption key")
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
	fs.StringVar(&c.SMTPPassword, "smtp-password", "", "SMTP AUTH password (prefer NITRONET_SMTP_PASSWORD or the config file)")
	fs.StringVar(&c.SMTPFrom, "smtp-from", "", "From address for email")
	fs.StringVar(&c.SMTPTLS, "smtp-tls", "starttls", "SMTP TLS: starttls (required), tls (implicit), opportunistic or none")
	fs.StringVar(&c.SMSWebhook, "sms-webhook", "", "HTTPS URL that sends SMS (POST {to, body}); empty writes SMS to DATA/outbox")
	fs.StringVar(&c.SMSWebhookToken, "sms-webhook-token", "", "Bearer token for the SMS webhook (prefer NITRONET_SMS_WEBHOOK_TOKEN or the config file)")
	fs.StringArrayVar(&c.Retention, "retention", nil, "retention override CATEGORY=DAYS, repeatable (e.g. usage.sessions=30); see docs/retention.md")
	fs.Float64Var(&c.StatsBudget, "stats-budget", 3, "privacy budget (epsilon) of the statistical reports of each calendar quarter, together; see `nitronet admin stats budget`")
	bindController(fs, &c.Controller)
	fs.StringVar(&c.Gateway.Mode, "gateway", "", "also run a gateway in this process: userspace or kernel (enrolled automatically)")
	c.Gateway.Bind(fs, "gateway-")
}

// markSettings returns a function that annotates every flag added to fs
// since the call as a setting.
func markSettings(fs *pflag.FlagSet) func() {
	before := map[string]bool{}
	fs.VisitAll(func(f *pflag.Flag) { before[f.Name] = true })
	return func() {
		fs.VisitAll(func(f *pflag.Flag) {
			if !before[f.Name] {
				_ = fs.SetAnnotation(f.Name, annotation, []string{"true"})
			}
		})
	}
}

// Validate checks c and fills in derived fields. Errors name the flag.
func (c *Settings) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("--data must not be empty")
	}
	if c.KEKFile == "" {
		c.KEKFile = filepath.Join(c.DataDir, "kek")
	}
	if c.Keyring == "" {
		c.Keyring = filepath.Join(c.DataDir, "keyring")
	}
	if c.KEKRotation != 0 && (c.KEKRotation < time.Hour || c.KEKRotation > 366*24*time.Hour) {
		return fmt.Errorf("--kek-rotation must be 0 (off) or between 1h and 8784h")
	}
	if c.KEKSettle < time.Second || c.KEKSettle > time.Hour {
		return fmt.Errorf("--kek-settle must be between 1s and 1h")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT", c.Listen)
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	if c.Database != "" {
		u, err := url.Parse(c.Database)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return fmt.Errorf("--database: want a postgres:// URL")
		}
	}
	if err := c.validatePools(); err != nil {
		return err
	}
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
	if err := oneOf("usage-recording", c.UsageRecording, "intervals", "none"); err != nil {
		return err
	}
	if err := oneOf("log-format", c.LogFormat, "text", "json"); err != nil {
		return err
	}
	if err := oneOf("log-level", c.LogLevel, "debug", "info", "warn", "error"); err != nil {
		return err
	}
	if !(c.StatsBudget > 0 && c.StatsBudget <= MaxStatsBudget) {
		return fmt.Errorf("--stats-budget must be more than 0 and at most %d", MaxStatsBudget)
	}
	if err := c.validateMessaging(); err != nil {
		return err
	}
	if err := c.Transport.validate(c); err != nil {
		return err
	}
	c.Controller = c.Controller.Normalize()
	if err := c.Controller.Validate(); err != nil {
		return err
	}
	return c.Gateway.Validate("gateway-")
}

func (c *Settings) validateTLS() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if c.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %v", err)
		}
		if len(c.ACME.Domains) > 0 {
			return fmt.Errorf("--acme-domain and --tls-cert are alternatives: give one")
		}
	}
	return c.ACME.validate()
}

// ServesTLS reports whether the server speaks HTTPS: with a certificate
// of its own (--tls-cert) or from an ACME CA (--acme-domain).
func (c *Settings) ServesTLS() bool { return c.TLSCert != "" || len(c.ACME.Domains) > 0 }

func (c *Settings) validatePools() error {
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
	return nil
}

func (c *Settings) validateMessaging() error {
	if c.SMTPHost != "" {
		if c.SMTPFrom == "" {
			return fmt.Errorf("--smtp-from is required with --smtp-host")
		}
		if c.SMTPPort < 1 || c.SMTPPort > 65535 {
			return fmt.Errorf("--smtp-port must be 1 to 65535")
		}
		if err := oneOf("smtp-tls", c.SMTPTLS, "starttls", "tls", "opportunistic", "none"); err != nil {
			return err
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

// oneOf returns an error naming flag unless v is one of allowed.
func oneOf(flag, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	last := len(allowed) - 1
	return fmt.Errorf("--%s must be %s or %s", flag, strings.Join(allowed[:last], ", "), allowed[last])
}

// GatewayAddrs returns the gateway's own tunnel addresses: the first host
// of each pool (devices are numbered from the second). Gateways answer DNS
// on them.
func (c *Settings) GatewayAddrs() []netip.Addr {
	return []netip.Addr{c.V4.Addr().Next(), c.V6.Addr().Next()}
}
