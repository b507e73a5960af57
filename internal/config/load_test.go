package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/controller"
	"github.com/spf13/pflag"
)

// parse binds Settings and a command's own flag on a new flag set, parses
// args and loads with env.
func parse(t *testing.T, args []string, env map[string]string) (*Settings, *string, error) {
	t.Helper()
	var s Settings
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	s.Bind(fs)
	reason := fs.String("reason", "", "a command's own flag, not a setting")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	err := Load(fs, func(k string) string { return env[k] })
	return &s, reason, err
}

func writeFile(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nitronet.toml")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPrecedence(t *testing.T) {
	file := writeFile(t, `
listen = "127.0.0.1:9001"
device-limit = 7
session-ttl = "24h"
retention = ["usage.sessions=30", "inbox.messages=60"]
gateway = "userspace"
gateway-allow-cidr = ["198.18.0.0/15"]

[smtp]
host = "mail.example.com"
port = 2525
from = "vpn@example.net"
`, 0o600)
	s, _, err := parse(t, []string{"--config", file, "--listen", "127.0.0.1:9003"},
		map[string]string{"NITRONET_LISTEN": "127.0.0.1:9002", "NITRONET_SMTP_PORT": "465"})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"flag beats env and file", s.Listen, "127.0.0.1:9003"},
		{"env beats file", s.SMTPPort, 465},
		{"file beats default", s.DeviceLimit, 7},
		{"table key", s.SMTPHost, "mail.example.com"},
		{"duration", s.SessionTTL, 24 * time.Hour},
		{"array", strings.Join(s.Retention, " "), "usage.sessions=30 inbox.messages=60"},
		{"gateway mode", s.Gateway.Mode, "userspace"},
		{"gateway slice", strings.Join(s.Gateway.Allow, " "), "198.18.0.0/15"},
		{"default kept", s.SMTPTLS, "starttls"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadConfigFromEnv(t *testing.T) {
	file := writeFile(t, "data = \"/srv/nitronet\"\n", 0o644)
	s, _, err := parse(t, nil, map[string]string{"NITRONET_CONFIG": file})
	if err != nil {
		t.Fatal(err)
	}
	if s.DataDir != "/srv/nitronet" || s.ConfigFile != file {
		t.Fatalf("got data %q config %q, want /srv/nitronet and %s", s.DataDir, s.ConfigFile, file)
	}
}

func TestLoadLeavesCommandFlagsAlone(t *testing.T) {
	_, reason, err := parse(t, nil, map[string]string{"NITRONET_REASON": "from the environment"})
	if err != nil {
		t.Fatal(err)
	}
	if *reason != "" {
		t.Fatalf("a command's own flag was set from the environment: %q", *reason)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, body string
		mode       os.FileMode
		env        map[string]string
		want       string
	}{
		{"unknown key", "lisen = \"x\"\n", 0o600, nil, "unknown setting lisen"},
		{"unknown table key", "[smtp]\nhots = \"x\"\n", 0o600, nil, "unknown setting smtp-hots"},
		{"command flag is not a setting", "reason = \"x\"\n", 0o600, nil, "unknown setting reason"},
		{"bad value", "device-limit = \"many\"\n", 0o600, nil, "device-limit"},
		{"bad type", "listen = 2024-01-01\n", 0o600, nil, "listen"},
		{"nested tables", "[smtp.tls]\nx = 1\n", 0o600, nil, "nest"},
		{"twice", "smtp-host = \"a\"\n[smtp]\nhost = \"b\"\n", 0o600, nil, "twice"},
		{"not TOML", "listen = \n", 0o600, nil, "nitronet.toml"},
		{"secret readable by others", "smtp-password = \"hunter2\"\n", 0o644, nil, "chmod 600"},
		{"bad env", "", 0o600, map[string]string{"NITRONET_DEVICE_LIMIT": "x"}, "NITRONET_DEVICE_LIMIT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := writeFile(t, c.body, c.mode)
			_, _, err := parse(t, []string{"--config", file}, c.env)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, _, err := parse(t, []string{"--config", filepath.Join(t.TempDir(), "nope.toml")}, nil)
		if err == nil || !strings.Contains(err.Error(), "--config") {
			t.Fatalf("got %v, want an error naming --config", err)
		}
	})
	t.Run("secret in a private file", func(t *testing.T) {
		file := writeFile(t, "smtp-password = \"hunter2\"\n", 0o600)
		s, _, err := parse(t, []string{"--config", file}, nil)
		if err != nil || s.SMTPPassword != "hunter2" {
			t.Fatalf("got %v, %q", err, s.SMTPPassword)
		}
	})
}

// FuzzParseFile: no input makes the parser panic.
func FuzzParseFile(f *testing.F) {
	f.Add("data = \"x\"\n[smtp]\nhost = \"h\"\nport = 25\n")
	f.Add("retention = [\"a=1\", 2, true]\n")
	f.Add("[a.b]\nc = 1\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseFile("fuzz.toml", []byte(s))
	})
}

// TestLoadController: the controller's identity loads like every other
// setting: from a [controller] table, NITRONET_CONTROLLER_* and flags,
// and Validate checks it, naming the flag.
func TestLoadController(t *testing.T) {
	file := writeFile(t, `
[controller]
name = "Example VPN GmbH"
address = "1 Example Street, 10115 Berlin, Germany"
email = "privacy@example.org"
dpo-name = "Dana Officer"
dpo-email = "dpo@example.org"
representative-name = "Rep SA"
representative-email = "rep@example.eu"
`, 0o600)
	s, _, err := parse(t, []string{"--config", file, "--controller-phone", " +49 30 1234567 "},
		map[string]string{"NITRONET_CONTROLLER_EMAIL": "office@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	s.DataDir = t.TempDir()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	want := controller.Identity{Name: "Example VPN GmbH", Address: "1 Example Street, 10115 Berlin, Germany",
		Email: "office@example.org", Phone: "+49 30 1234567", DPO: controller.DPO{Name: "Dana Officer", Email: "dpo@example.org"},
		Representative: controller.Representative{Name: "Rep SA", Email: "rep@example.eu"}}
	if s.Controller != want {
		t.Errorf("controller = %+v, want %+v", s.Controller, want)
	}

	s, _, err = parse(t, []string{"--controller-email", "not an address"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.DataDir = t.TempDir()
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "--controller-email") {
		t.Errorf("Validate() = %v, want an error naming --controller-email", err)
	}
}
