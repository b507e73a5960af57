package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/spf13/pflag"
)

// repoRoot is the repository root, seen from this package's directory.
const repoRoot = "../.."

// need returns the path of the program name, or skips the test when it is
// absent, unless NITRONET_REQUIRE_PACKAGING=1 (CI), where that fails it.
func need(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("NITRONET_REQUIRE_PACKAGING") == "1" {
			t.Fatalf("%s is required (NITRONET_REQUIRE_PACKAGING=1): %v", name, err)
		}
		t.Skipf("%s not found: %v", name, err)
	}
	return p
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String() + errb.String()
}

// buildStub packs a stand-in binary (building the real one is the CI
// script's job) and returns the package's path.
func buildStub(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "nitronet")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho nitronet stub\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "dist")
	var stdout bytes.Buffer
	args := []string{"--root", repoRoot, "--binary", bin, "--out", out}
	if version != "" {
		args = append(args, "--version", version)
	}
	if err := run(context.Background(), args, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(stdout.String())
}

// TestPackage: the package has the Debian name, the binary, both units,
// the settings as configuration files the package never overwrites (mode
// 0600), the documentation, and a postinst that makes the nitronet user.
func TestPackage(t *testing.T) {
	dpkgDeb := need(t, "dpkg-deb")
	deb := buildStub(t, "1.2.3~rc1")
	if got, want := filepath.Base(deb), "nitronet_1.2.3~rc1_amd64.deb"; got != want {
		t.Fatalf("package file %s, want %s", got, want)
	}
	info := sh(t, dpkgDeb, "--info", deb)
	for _, want := range []string{"Package: nitronet", "Version: 1.2.3~rc1", "Architecture: amd64", "Depends: adduser", "postinst", "prerm", "postrm"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
		}
	}
	contents := sh(t, dpkgDeb, "--contents", deb)
	for _, want := range []string{
		`-rwxr-xr-x root/root .* ./usr/bin/nitronet`,
		`-rw-r--r-- root/root .* ./lib/systemd/system/nitronet.service`,
		`-rw-r--r-- root/root .* ./lib/systemd/system/nitronet-gateway.service`,
		`-rw------- root/root .* ./etc/nitronet/nitronet.toml`,
		`-rw------- root/root .* ./etc/nitronet/gateway.env`,
		`./usr/share/doc/nitronet/backup.md`,
		`./usr/share/doc/nitronet/openapi.json`,
	} {
		if !regexp.MustCompile(want).MatchString(contents) {
			t.Errorf("package contents lack %s:\n%s", want, contents)
		}
	}
	ctl := t.TempDir()
	sh(t, dpkgDeb, "--control", deb, ctl)
	conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(string(conffiles)), " "); got != "/etc/nitronet/gateway.env /etc/nitronet/nitronet.toml" {
		t.Errorf("conffiles %q, want the two settings files", got)
	}
	postinst, err := os.ReadFile(filepath.Join(ctl, "postinst"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(postinst), "adduser --system --group") {
		t.Errorf("postinst does not create the nitronet user:\n%s", postinst)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		sh(t, "sh", "-n", filepath.Join(ctl, s))
	}

	// Without --version it names the commit.
	if deb := buildStub(t, ""); !regexp.MustCompile(`^nitronet_0~(git\d{14}\.[0-9a-f]{12}|dev)_amd64\.deb$`).MatchString(filepath.Base(deb)) {
		t.Errorf("default version: got %s", filepath.Base(deb))
	}
	if err := run(context.Background(), []string{"--root", repoRoot, "--binary", "x", "--version", "v1.0"}, io.Discard, io.Discard); err == nil {
		t.Error("--version v1.0 (not a Debian version) was accepted")
	}
}

// TestUnitsVerify: systemd-analyze verify accepts both units as installed
// by the package, with not even a warning.
func TestUnitsVerify(t *testing.T) {
	analyze := need(t, "systemd-analyze")
	dpkgDeb := need(t, "dpkg-deb")
	root := t.TempDir()
	sh(t, dpkgDeb, "--extract", buildStub(t, "1.0.0"), root)
	// The units they depend on (targets) come from the host.
	units := filepath.Join(root, "lib", "systemd", "system")
	for _, dir := range []string{"/lib/systemd/system", "/usr/lib/systemd/system"} {
		es, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range es {
			if strings.HasPrefix(e.Name(), "nitronet") || e.IsDir() {
				continue
			}
			if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
				_ = os.WriteFile(filepath.Join(units, e.Name()), b, 0o644)
			}
		}
		break
	}
	out, err := exec.Command(analyze, "verify", "--root="+root, "nitronet.service", "nitronet-gateway.service").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The check has teeth: an unknown setting is reported.
	bad := filepath.Join(units, "nitronet.service")
	b, _ := os.ReadFile(bad)
	if err := os.WriteFile(bad, bytes.Replace(b, []byte("[Service]\n"), []byte("[Service]\nProtectSystems=strict\n"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command(analyze, "verify", "--root="+root, "nitronet.service").CombinedOutput(); !bytes.Contains(out, []byte("ProtectSystems")) {
		t.Fatalf("systemd-analyze verify said nothing about an unknown setting: %s", out)
	}
}

// TestUnitsHardening: the hardening the units promise is there, and only
// the gateway may administer the network.
func TestUnitsHardening(t *testing.T) {
	common := []string{
		"User=nitronet", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		"ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectControlGroups=yes",
		"RestrictNamespaces=yes", "RestrictSUIDSGID=yes", "MemoryDenyWriteExecute=yes",
		"SystemCallFilter=@system-service", "SystemCallFilter=~@privileged", "SystemCallArchitectures=native",
		"UMask=0077",
	}
	for unit, want := range map[string][]string{
		"nitronet.service": {
			"ExecStart=/usr/bin/nitronet serve --config /etc/nitronet/nitronet.toml", "StateDirectory=nitronet",
			"CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
			"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "PrivateDevices=yes",
		},
		"nitronet-gateway.service": {
			"ExecStart=/usr/bin/nitronet gateway --mode kernel --key-file /var/lib/nitronet-gateway/gateway.key",
			"StateDirectory=nitronet-gateway",
			"CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE", "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
			"RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK AF_UNIX", "DeviceAllow=/dev/net/tun rw",
		},
	} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "packaging", "systemd", unit))
		if err != nil {
			t.Fatal(err)
		}
		lines := map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			lines[strings.TrimSpace(l)] = true
		}
		for _, w := range append(want, common...) {
			if !lines[w] {
				t.Errorf("%s lacks %q", unit, w)
			}
		}
		if unit == "nitronet.service" && strings.Contains(string(b), "CAP_NET_ADMIN") {
			t.Errorf("%s grants CAP_NET_ADMIN: only the gateway may have it", unit)
		}
	}
}

// TestShippedSettings: the package's nitronet.toml loads as `serve` loads
// it, and so do the settings its comments suggest, uncommented.
func TestShippedSettings(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "packaging", "nitronet.toml"))
	if err != nil {
		t.Fatal(err)
	}
	suggested := regexp.MustCompile(`(?m)^# ((\[[a-z]+\])|([a-z-]+ = .*))$`).ReplaceAllString(string(b), "$1")
	for name, text := range map[string]string{"as shipped": string(b), "with every suggestion": suggested} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "nitronet.toml")
			// The data directory is the test's own.
			text = strings.Replace(text, `data = "/var/lib/nitronet"`, `data = "`+filepath.Join(dir, "data")+`"`, 1)
			if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			var cfg config.Settings
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			cfg.Bind(fs)
			if err := fs.Parse([]string{"--config", file}); err != nil {
				t.Fatal(err)
			}
			if err := config.Load(fs, func(string) string { return "" }); err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if name != "as shipped" && (len(cfg.ACME.Domains) != 1 || cfg.SMTPHost == "" || cfg.Database == "") {
				t.Fatalf("the suggestions were not all read: %+v", cfg)
			}
		})
	}
}
