package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/inventory"
)

// TestAdminRecordsRetentionInForce: with --retention usage.sessions=30,
// `admin records` (Markdown and JSON) and `admin retention rules` (text
// and JSON) state 30 days for session intervals, never the default 90.
// Without controller settings, `admin records` says so on stderr and in
// the record, naming the flags.
func TestAdminRecordsRetentionInForce(t *testing.T) {
	data := t.TempDir()
	op := &admin{t: t, data: data}
	op.must("correct horse battery staple\n", "admin", "staff", "add", "--data", data, "--email", "po@example.com", "--role", "privacy_officer")
	po := op.as("po@example.com")
	flags := []string{"--data", data, "--retention", "usage.sessions=30"}

	md, stderr, err := po.run("", append([]string{"admin", "records"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md, "| Session intervals | ") || !strings.Contains(md, "| 30 days after the session ended |") ||
		!strings.Contains(md, "- **Retention:** 30 days after the session ended. Deleted 30 days after the session ended") ||
		strings.Contains(md, "90 days after the session ended") {
		t.Errorf("admin records (Markdown) does not state the 30 days in force:\n%s", md)
	}
	for _, want := range []string{"| Name | not configured (set --controller-name) |", "| Email | not configured (set --controller-email) |"} {
		if !strings.Contains(md, want) {
			t.Errorf("admin records (Markdown) lacks %q", want)
		}
	}
	if strings.Contains(md, "[not configured") {
		t.Errorf("admin records names a setting that does not exist")
	}
	if want := "warning: --controller-name, --controller-address and --controller-email are not set"; !strings.Contains(stderr, want) {
		t.Errorf("admin records stderr = %q, want %q", stderr, want)
	}

	out := po.must("", append([]string{"admin", "records", "--format", "json"}, flags...)...)
	var rop inventory.RoP
	if err := json.Unmarshal([]byte(out), &rop); err != nil {
		t.Fatalf("admin records --format json: %v\n%s", err, out)
	}
	found := false
	for _, c := range rop.Categories {
		if c.ID == inventory.IDSessions {
			found = true
			if c.Retention.Days != 30 || !strings.Contains(c.Retention.Criteria, "30 days") || strings.Contains(c.Retention.Criteria, "90 days") {
				t.Errorf("admin records JSON sessions retention = %+v, want 30 days", c.Retention)
			}
		}
	}
	if !found || rop.Controller != (controller.Identity{}) {
		t.Errorf("admin records JSON: sessions found %v, controller %+v; want the category and an empty controller", found, rop.Controller)
	}

	out = po.must("", append([]string{"admin", "retention", "rules"}, flags...)...)
	if !regexp.MustCompile(`(?m)^usage\.sessions\s+30\s+90\s+30 days after the session ended\s`).MatchString(out) {
		t.Errorf("admin retention rules: want usage.sessions at 30 days (default 90), got\n%s", out)
	}
	out = po.must("", append([]string{"admin", "retention", "rules", "--json"}, flags...)...)
	var rules struct {
		Rules []struct {
			Category    string
			Days        int
			DefaultDays int `json:"default_days"`
			Rule        string
		}
	}
	if err := json.Unmarshal([]byte(out), &rules); err != nil {
		t.Fatal(err)
	}
	for _, r := range rules.Rules {
		if r.Category == inventory.IDSessions && (r.Days != 30 || r.DefaultDays != 90 || r.Rule != "30 days after the session ended") {
			t.Errorf("admin retention rules --json sessions = %+v, want 30 days, default 90", r)
		}
	}
}

// TestAdminRecordsController: the controller settings, from a
// configuration file's [controller] table, appear in the record (Markdown
// and JSON) and silence the warning; bad ones are refused naming the flag.
func TestAdminRecordsController(t *testing.T) {
	data := t.TempDir()
	op := &admin{t: t, data: data}
	op.must("correct horse battery staple\n", "admin", "staff", "add", "--data", data, "--email", "po@example.com", "--role", "privacy_officer")
	po := op.as("po@example.com")
	conf := filepath.Join(t.TempDir(), "nitronet.toml")
	toml := `data = "` + data + `"
[controller]
name = "Example VPN GmbH"
address = "1 Example Street, 10115 Berlin, Germany"
email = "privacy@example.org"
phone = "+49 30 1234567"
dpo-name = "Dana Officer"
dpo-email = "dpo@example.org"
`
	if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	md, stderr, err := po.run("", "admin", "records", "--config", conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| Name | Example VPN GmbH |", "| Postal address | 1 Example Street, 10115 Berlin, Germany |",
		"| Phone | +49 30 1234567 |", "| Data protection officer | Dana Officer, dpo@example.org |"} {
		if !strings.Contains(md, want) {
			t.Errorf("admin records lacks %q", want)
		}
	}
	if strings.Contains(stderr, "warning") {
		t.Errorf("admin records warns with every required detail set: %q", stderr)
	}
	out := po.must("", "admin", "records", "--config", conf, "--format", "json")
	var rop inventory.RoP
	if err := json.Unmarshal([]byte(out), &rop); err != nil {
		t.Fatal(err)
	}
	want := controller.Identity{Name: "Example VPN GmbH", Address: "1 Example Street, 10115 Berlin, Germany", Email: "privacy@example.org",
		Phone: "+49 30 1234567", DPO: controller.DPO{Name: "Dana Officer", Email: "dpo@example.org"}}
	if rop.Controller != want {
		t.Errorf("admin records JSON controller = %+v, want %+v", rop.Controller, want)
	}
	if strings.Contains(out, "eu_representative") {
		t.Errorf("admin records JSON names an EU representative none was configured: %s", out)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--controller-email", "Privacy <privacy@example.org>"}, "--controller-email"},
		{[]string{"--controller-phone", "030 1234567"}, "--controller-phone"},
		{[]string{"--controller-dpo-name", "Dana Officer", "--controller-dpo-email", ""}, "--controller-dpo-email is required"},
		{[]string{"--controller-representative-address", "Rue 1, Brussels"}, "--controller-representative-name is required"},
	} {
		_, _, err := po.run("", append([]string{"admin", "records", "--data", data}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("admin records %v: got %v, want an error naming %s", tt.args, err, tt.want)
		}
	}
}
