package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/cli"
)

// admin runs nitronet commands against a data directory, as the staff
// member whose email and password are set.
type admin struct {
	t          *testing.T
	data       string
	staff, pwd string
}

func (a *admin) run(stdin string, args ...string) (string, string, error) {
	a.t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		switch k {
		case "NITRONET_STAFF":
			return a.staff
		case "NITRONET_STAFF_PASSWORD":
			return a.pwd
		case "NITRONET_CONFIG_DIR":
			return filepath.Join(a.data, "client")
		}
		return ""
	}
	err := cli.Run(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), err
}

func (a *admin) must(stdin string, args ...string) string {
	a.t.Helper()
	out, stderr, err := a.run(stdin, args...)
	if err != nil {
		a.t.Fatalf("nitronet %s: %v (stderr %q)", strings.Join(args, " "), err, stderr)
	}
	return out
}

func (a *admin) as(email string) *admin {
	c := *a
	c.staff, c.pwd = email, "correct horse battery staple"
	return &c
}

func TestDisclosureTransparencyCLI(t *testing.T) {
	data := t.TempDir()
	op := &admin{t: t, data: data}
	pw := "correct horse battery staple\n"
	op.must(pw, "admin", "staff", "add", "--data", data, "--email", "admin@example.com", "--role", "admin")
	adm := op.as("admin@example.com")
	adm.must(pw, "admin", "staff", "add", "--data", data, "--email", "legal@example.com", "--role", "legal")
	adm.must(pw, "admin", "staff", "add", "--data", data, "--email", "support@example.com", "--role", "support")
	legal, support := op.as("legal@example.com"), op.as("support@example.com")

	add := []string{"admin", "disclosure", "add", "--data", data, "--reference", "AG-1", "--authority", "Amtsgericht Berlin",
		"--jurisdiction", "DE", "--legal-basis", "§ 100j StPO", "--type", "court-order", "--received", "2026-03-02",
		"--scope", "subscriber data", "--decision", "refused"}

	// Role checks and bad input.
	for _, tt := range []struct {
		name string
		who  *admin
		args []string
		want string
	}{
		{"support may not add", support, add, "forbidden"},
		{"admin may not add", adm, add, "forbidden"},
		{"unknown decision", legal, append(append([]string{}, add...), "--decision", "maybe"), "decision must be one of"},
		{"unknown category", legal, append(append([]string{}, add...), "--decision", "complied", "--categories", "shoe.size", "--fields", "x"), "unknown data category"},
		{"bad date", legal, append(append([]string{}, add...), "--received", "March 2"), "want YYYY-MM-DD"},
		{"malformed period", legal, []string{"admin", "transparency", "--data", data, "--period", "2026Q3"}, "not of the form YYYYH1 or YYYYH2"},
		{"future period", legal, []string{"admin", "transparency", "--data", data, "--period", "2099H1"}, "has not started"},
		{"support may not sign", support, []string{"admin", "transparency", "--data", data, "--period", "2026H1"}, "forbidden"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.who.run("", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}

	out := legal.must("", add...)
	id := regexp.MustCompile(`dis_[a-z2-7]{26}`).FindString(out)
	if id == "" {
		t.Fatalf("disclosure add: got %q, want an id", out)
	}
	if out := legal.must("", "admin", "disclosure", "list", "--data", data, "--period", "2026H1"); !strings.Contains(out, id) {
		t.Fatalf("disclosure list: got %q, want %s", out, id)
	}
	if out := legal.must("", "admin", "disclosure", "show", "--data", data, id); !strings.Contains(out, "Amtsgericht Berlin") {
		t.Fatalf("disclosure show: got %q", out)
	}

	report := filepath.Join(t.TempDir(), "report.json")
	out, stderr, err := legal.run("", "admin", "transparency", "--data", data, "--period", "2026H1", "--output", report+".anon")
	if err != nil || !strings.Contains(stderr, "warning: --controller-name, --controller-address and --controller-email are not set") {
		t.Fatalf("transparency without a controller: got %v, stderr %q; want a warning naming the flags", err, stderr)
	}
	if out := op.must("", "transparency", "verify", report+".anon"); !regexp.MustCompile(`Published by:\s+not stated \(the operator configured none\)`).MatchString(out) {
		t.Errorf("verify of a report without a controller: got %q", out)
	}
	out = legal.must("", "admin", "transparency", "--data", data, "--period", "2026H1", "--output", report, "--canary", "No secret orders.",
		"--controller-name", "Example VPN GmbH", "--controller-address", "1 Example Street, Berlin", "--controller-email", "privacy@example.org")
	key := regexp.MustCompile(`Public key: (\S+)`).FindStringSubmatch(out)
	if key == nil {
		t.Fatalf("transparency: got %q, want the public key", out)
	}
	if fi, err := os.Stat(filepath.Join(data, "transparency.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: got %v, %v; want mode 0600", fi, err)
	}

	// Verify with the trusted key, then self-asserted.
	out = op.must("", "transparency", "verify", report, "--public-key", key[1])
	if !strings.Contains(out, "Signature valid: signed with the trusted key") || !strings.Contains(out, "refused 1") ||
		!regexp.MustCompile(`Published by:\s+Name: Example VPN GmbH\n\s+Postal address: 1 Example Street, Berlin\n\s+Email: privacy@example.org\n`).MatchString(out) {
		t.Fatalf("verify: got %q", out)
	}
	out = op.must("", "transparency", "verify", report)
	if !strings.Contains(out, "SELF-ASSERTED") || !strings.Contains(out, key[1]) {
		t.Fatalf("verify without key: got %q, want a self-asserted warning naming the key", out)
	}

	// Tampering with any byte of the report fails verification.
	orig, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(orig, []byte(`requests\":1`))
	if i < 0 {
		t.Fatalf("report has no request count: %s", orig)
	}
	tampered := bytes.Clone(orig)
	tampered[i+len(`requests\":`)] = '0'
	bad := filepath.Join(t.TempDir(), "tampered.json")
	if err := os.WriteFile(bad, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"transparency", "verify", bad, "--public-key", key[1]}, {"transparency", "verify", bad}} {
		if _, _, err := op.run("", args...); err == nil || !strings.Contains(err.Error(), "NOT verified") {
			t.Fatalf("verify tampered %v: got %v, want a failure", args[3:], err)
		}
	}
	otherKey := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	if _, _, err := op.run("", "transparency", "verify", report, "--public-key", otherKey); err == nil {
		t.Fatal("verify with another trusted key succeeded, want a failure")
	}
}

func TestProcessorAndStatsCLI(t *testing.T) {
	data := t.TempDir()
	op := &admin{t: t, data: data}
	pw := "correct horse battery staple\n"
	op.must(pw, "admin", "staff", "add", "--data", data, "--email", "admin@example.com", "--role", "admin")
	adm := op.as("admin@example.com")
	adm.must(pw, "admin", "staff", "add", "--data", data, "--email", "po@example.com", "--role", "privacy_officer")
	po := op.as("po@example.com")

	if _, _, err := adm.run("", "admin", "processor", "list", "--data", data); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("processor list as admin: got %v, want forbidden", err)
	}
	out := po.must("", "admin", "processor", "list", "--data", data)
	if !strings.Contains(out, "SMTP relay") || !strings.Contains(out, "SMS gateway") {
		t.Fatalf("processor list: got %q, want the defaults", out)
	}
	po.must("", "admin", "processor", "add", "--data", data, "--name", "Backup host", "--purpose", "off-site backups", "--categories", "account.record,devices")
	if _, _, err := po.run("", "admin", "processor", "add", "--data", data, "--name", "X", "--purpose", "y", "--categories", "nope"); err == nil {
		t.Fatal("processor add with an unknown category succeeded")
	}
	po.must("", "admin", "processor", "remove", "--data", data, "backup host")

	out = po.must("", "admin", "stats", "usage", "--data", data, "--from", "2026-01-01", "--to", "2026-01-31", "--format", "json")
	if !strings.Contains(out, `"privacy_unit": "account"`) || !strings.Contains(out, `"rows": []`) {
		t.Fatalf("stats json: got %q", out)
	}
	if _, _, err := po.run("", "admin", "stats", "usage", "--data", data, "--from", "2026-01-31", "--to", "2026-01-01"); err == nil {
		t.Fatal("stats with --to before --from succeeded")
	}
}
