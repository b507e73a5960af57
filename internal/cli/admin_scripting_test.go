package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/cli"
	"github.com/nitronet/nitronet/internal/staff"
)

// jsonList decodes out, an object whose keys are exactly keys, and returns
// the list under its first key, failing t unless it is a JSON list.
func jsonList(t *testing.T, what, out string, keys ...string) []json.RawMessage {
	t.Helper()
	wantKeys(t, what, json.RawMessage(out), append([]string(nil), keys...)...) // wantKeys sorts its argument
	m := decodeObject(t, what, out)
	var l []json.RawMessage
	if err := json.Unmarshal(m[keys[0]], &l); err != nil || l == nil {
		t.Fatalf("%s: %s is %s, want a list", what, keys[0], m[keys[0]])
	}
	return l
}

// wantNull fails t unless raw is JSON null.
func wantNull(t *testing.T, what string, raw json.RawMessage) {
	t.Helper()
	if string(raw) != "null" {
		t.Errorf("%s: got %s, want null", what, raw)
	}
}

// TestAdminJSON: every `admin … list|show` prints JSON with --json, with
// the keys docs/cli.md lists, times in RFC 3339, null for a time that
// does not apply and [] for an empty list.
func TestAdminJSON(t *testing.T) {
	h, srv := newHarness(t, nil)
	ctx := context.Background()
	d := []string{"--data", h.dataDir}
	admin := func(args ...string) []string { return append(append([]string{"admin"}, args...), d...) }
	const pw = "correct horse battery staple"
	as := func(email string) { h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = email, pw }

	h.must(pw+"\n", admin("staff", "add", "--email", "ops@example.com", "--role", "admin")...)
	as("ops@example.com")
	for _, s := range []struct{ email, role string }{{"po@example.com", "privacy_officer"}, {"law@example.com", "legal"}, {"help@example.com", "support"}} {
		h.must(pw+"\n", admin("staff", "add", "--email", s.email, "--role", s.role)...)
	}
	// A user with a privacy request.
	h.must("correct horse battery\n", "signup", "--email", "user@example.com", "--mobile", "+447911100600")
	h.must("", "verify", "email", h.code("email"))
	h.must("", "verify", "mobile", h.code("sms"))
	accountID := strings.Trim(string(decodeObject(t, "whoami", h.must("", "whoami", "--json"))["account_id"]), `"`)
	reqID := regexp.MustCompile(`prq_[a-z2-7]{26}`).FindString(h.must("", "privacy", "request", "access"))

	// Staff.
	l := jsonList(t, "staff list", h.must("", admin("staff", "list", "--json")...), "staff")
	if len(l) != 4 {
		t.Fatalf("staff list --json: %d members, want 4", len(l))
	}
	wantKeys(t, "staff member", l[0], "id", "email", "role", "disabled", "two_factor", "created_at")
	wantTime(t, "staff created_at", decodeObject(t, "staff", string(l[0]))["created_at"])

	// Gateways: none, then one not enrolled yet.
	if l := jsonList(t, "gateway list", h.must("", admin("gateway", "list", "--json")...), "gateways"); len(l) != 0 {
		t.Fatalf("gateway list --json: got %s, want []", l)
	}
	h.must("", admin("gateway", "add", "--region", "eu-west", "--endpoint", "198.18.0.1:51820")...)
	l = jsonList(t, "gateway list", h.must("", admin("gateway", "list", "--json")...), "gateways")
	wantKeys(t, "gateway", l[0], "id", "region", "endpoint", "public_key", "enrolled", "last_seen")
	g := decodeObject(t, "gateway", string(l[0]))
	if string(g["region"]) != `"eu-west"` || string(g["enrolled"]) != "false" {
		t.Errorf("gateway: got %s", l[0])
	}
	wantNull(t, "gateway last_seen", g["last_seen"])

	// Legal holds.
	as("law@example.com")
	h.must("", admin("hold", "add", "--account", accountID, "--reason", "case 7")...)
	l = jsonList(t, "hold list", h.must("", admin("hold", "list", "--json")...), "holds")
	wantKeys(t, "hold", l[0], "id", "account_id", "reason", "created_by", "created_at", "until", "released_at", "released_by", "active")
	hold := decodeObject(t, "hold", string(l[0]))
	if string(hold["account_id"]) != strconv.Quote(accountID) || string(hold["active"]) != "true" || string(hold["released_by"]) != `""` {
		t.Errorf("hold: got %s", l[0])
	}
	wantNull(t, "hold until", hold["until"])
	wantNull(t, "hold released_at", hold["released_at"])

	// Disclosures: the list and one in full.
	out := h.must("", admin("disclosure", "add", "--reference", "AG-1", "--authority", "Amtsgericht Berlin", "--jurisdiction", "DE",
		"--legal-basis", "§ 100j StPO", "--type", "court-order", "--received", "2026-03-02", "--scope", "subscriber data",
		"--decision", "refused", "--accounts", accountID)...)
	disID := regexp.MustCompile(`dis_[a-z2-7]{26}`).FindString(out)
	disclosureKeys := []string{"id", "reference", "authority", "jurisdiction", "legal_basis", "type", "received_at", "scope_requested",
		"decision", "categories_disclosed", "fields_disclosed", "account_ids", "gag_until", "gag_notified_at", "recorded_by", "recorded_at"}
	l = jsonList(t, "disclosure list", h.must("", admin("disclosure", "list", "--json")...), "disclosures")
	if len(l) != 1 {
		t.Fatalf("disclosure list --json: got %d, want 1", len(l))
	}
	wantKeys(t, "disclosure list item", l[0], disclosureKeys...)
	out = h.must("", admin("disclosure", "show", disID, "--json")...)
	wantKeys(t, "disclosure show", json.RawMessage(out), disclosureKeys...)
	dis := decodeObject(t, "disclosure show", out)
	wantTime(t, "received_at", dis["received_at"])
	wantNull(t, "gag_until", dis["gag_until"])
	var accounts []string
	if err := json.Unmarshal(dis["account_ids"], &accounts); err != nil || len(accounts) != 1 || accounts[0] != accountID ||
		string(dis["categories_disclosed"]) != "[]" || string(dis["authority"]) != `"Amtsgericht Berlin"` {
		t.Errorf("disclosure show --json: got %s", out)
	}

	// Privacy requests, as the privacy officer: account and actions added.
	as("po@example.com")
	staffRequestKeys := []string{"id", "account_id", "type", "status", "channel", "identity_check", "recipients", "details", "received_at", "due_at", "overdue", "identity_proof",
		"extension", "verified_at", "confirmed_at", "completed_at", "denied_reason", "outcome", "export_until", "fee", "actions"}
	l = jsonList(t, "privacy list", h.must("", admin("privacy", "list", "--json")...), "requests")
	if len(l) != 1 {
		t.Fatalf("admin privacy list --json: got %d requests, want 1", len(l))
	}
	wantKeys(t, "admin privacy list item", l[0], staffRequestKeys...)
	out = h.must("", admin("privacy", "show", reqID, "--json")...)
	wantKeys(t, "admin privacy show", json.RawMessage(out), staffRequestKeys...)
	req := decodeObject(t, "admin privacy show", out)
	if string(req["id"]) != strconv.Quote(reqID) || string(req["account_id"]) != strconv.Quote(accountID) {
		t.Errorf("admin privacy show --json: got %s", out)
	}
	var actions []json.RawMessage
	if err := json.Unmarshal(req["actions"], &actions); err != nil || len(actions) != 3 {
		t.Fatalf("actions: got %s, want extend, complete and deny", req["actions"])
	}
	for _, a := range actions {
		wantKeys(t, "action", a, "action", "allowed", "reason", "months")
	}
	if !strings.Contains(string(req["actions"]), `"action": "privacy.extend"`) {
		t.Errorf("actions: got %s", req["actions"])
	}
	if l := jsonList(t, "privacy list --overdue", h.must("", admin("privacy", "list", "--overdue", "--json")...), "requests"); len(l) != 0 {
		t.Errorf("admin privacy list --overdue --json: got %s, want []", l)
	}

	// Processors.
	l = jsonList(t, "processor list", h.must("", admin("processor", "list", "--json")...), "processors")
	if len(l) < 2 {
		t.Fatalf("processor list --json: got %d, want the defaults", len(l))
	}
	wantKeys(t, "processor", l[0], "id", "name", "purpose", "categories", "created_at")

	// Account.
	out = h.must("", admin("account", "show", accountID, "--json")...)
	wantKeys(t, "account show", json.RawMessage(out), "id", "status", "email", "mobile", "email_verified", "mobile_verified", "created_at", "processing")
	if acc := decodeObject(t, "account", out); string(acc["email"]) != `"user@example.com"` || string(acc["status"]) != `"active"` {
		t.Errorf("account show --json: got %s", out)
	}
	proc := decodeObject(t, "account", out)["processing"]
	wantKeys(t, "account processing", proc, "restricted", "objected", "stopped", "continues", "effect")
	if p := decodeObject(t, "processing", string(proc)); string(p["stopped"]) != "[]" || string(p["objected"]) != "false" {
		t.Errorf("account show --json processing: got %s, want nothing stopped", proc)
	}

	// Policy versions (public, no staff login): one more after a publication.
	delete(h.env, "NITRONET_STAFF")
	before := len(jsonList(t, "policy list", h.must("", admin("policy", "list", "--json")...), "versions"))
	as("po@example.com")
	file := filepath.Join(t.TempDir(), "policy.txt")
	if err := os.WriteFile(file, []byte("We keep nothing."), 0o600); err != nil {
		t.Fatal(err)
	}
	h.must("", admin("policy", "publish", file, "--kind", "privacy")...)
	l = jsonList(t, "policy list", h.must("", admin("policy", "list", "--json")...), "versions")
	if len(l) != before+1 {
		t.Fatalf("policy list --json: %d versions after a publication, want %d", len(l), before+1)
	}
	wantKeys(t, "policy version", l[0], "id", "kind", "version", "material", "published_at")

	// Notices: an announcement made but not sent yet is unfinished.
	if l := jsonList(t, "notices list", h.must("", admin("notices", "list", "--json")...), "notices"); len(l) != 0 {
		t.Fatalf("notices list --json: got %s, want []", l)
	}
	p, err := srv.Staff.Check(ctx, staff.Credentials{Email: "ops@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Policy.Announce(ctx, p, "Maintenance", "On Monday.", true); err != nil {
		t.Fatal(err)
	}
	l = jsonList(t, "notices list", h.must("", admin("notices", "list", "--json")...), "notices")
	if len(l) != 1 {
		t.Fatalf("notices list --json: got %d, want 1", len(l))
	}
	wantKeys(t, "notice", l[0], "id", "kind", "document_id", "subject", "email", "created_at", "accounts", "posted",
		"emails_sent", "emails_failed", "emails_pending", "emails_queued", "emails_unconfirmed")
	if n := decodeObject(t, "notice", string(l[0])); string(n["kind"]) != `"announcement"` || string(n["email"]) != "true" {
		t.Errorf("notice: got %s", l[0])
	}

	// Retention: no sweep yet, then one.
	out = h.must("", admin("retention", "rules", "--json")...)
	l = jsonList(t, "retention rules", out, "rules", "last_sweep")
	wantKeys(t, "rule", l[0], "category", "name", "covers", "targets", "days", "default_days", "trigger", "rule", "note")
	wantNull(t, "last_sweep", decodeObject(t, "retention rules", out)["last_sweep"])
	h.must("", admin("retention", "run")...)
	out = h.must("", admin("retention", "rules", "--json")...)
	sweep := decodeObject(t, "retention rules", out)["last_sweep"]
	wantKeys(t, "last_sweep", sweep, "id", "cause", "started_at", "finished_at", "counts")
	var counts []json.RawMessage
	if err := json.Unmarshal(decodeObject(t, "sweep", string(sweep))["counts"], &counts); err != nil || len(counts) == 0 {
		t.Fatalf("sweep counts: got %s", sweep)
	}
	wantKeys(t, "sweep count", counts[0], "category", "target", "days", "deleted", "kept_by_hold", "batches", "skipped", "error")
	wantTime(t, "started_at", decodeObject(t, "sweep", string(sweep))["started_at"])

	// Statistics and the record of processing: --json is --format json.
	out = h.must("", admin("stats", "usage", "--from", "2026-01-01", "--to", "2026-01-31", "--json")...)
	wantKeys(t, "stats usage", json.RawMessage(out), "from", "to", "privacy_unit", "epsilon", "delta", "min_group",
		"max_regions_per_account_day", "max_sessions_per_account_day_region", "max_hours_per_account_day_region", "noise", "rows", "budget")
	if string(decodeObject(t, "stats", out)["rows"]) != "[]" {
		t.Errorf("stats usage --json: got %s, want no rows", out)
	}
	out = h.must("", admin("records", "--json")...)
	wantKeys(t, "records", json.RawMessage(out), "controller", "purposes", "data_subjects", "categories", "recipients",
		"third_country_transfers", "security_measures", "legal_holds", "never_kept")
	if other := h.must("", admin("records", "--format", "json")...); other != out {
		t.Errorf("records --json and --format json differ")
	}

	// Audit log: every read above is in it, oldest first.
	as("ops@example.com")
	out = h.must("", admin("audit", "list", "--json")...)
	l = jsonList(t, "audit list", out, "entries", "last_seq")
	wantKeys(t, "audit entry", l[0], "seq", "at", "actor", "role", "action", "subject", "detail", "prev_hash", "hash")
	first := decodeObject(t, "audit entry", string(l[0]))
	if string(first["seq"]) != "1" || string(first["prev_hash"]) != `""` || !regexp.MustCompile(`^"[0-9a-f]{64}"$`).Match(first["hash"]) {
		t.Errorf("first audit entry: got %s", l[0])
	}
	if last := decodeObject(t, "audit list", out)["last_seq"]; string(last) != strconv.Itoa(len(l)) {
		t.Errorf("audit list: last_seq %s with %d entries read from the start", last, len(l))
	}
	if !strings.Contains(out, `"action": "`+staff.ActAccountView+`"`) {
		t.Errorf("audit list --json lacks the account read")
	}
}

// TestAdminUsageErrors: admin commands check their own flags before they
// open the data directory or ask for a password, and a missing or
// malformed one is a usage error (status 2), as on the client commands.
func TestAdminUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string // in the message
	}{
		{[]string{"transparency"}, `--period is required`},
		{[]string{"transparency", "--period", "2026Q3"}, `not of the form YYYYH1 or YYYYH2`},
		{[]string{"hold", "add", "--reason", "case 1"}, `--account is required`},
		{[]string{"hold", "add", "--account", "acc_x", "--reason", "case 1", "--until", "soon"}, `want YYYY-MM-DD`},
		{[]string{"hold", "list"}, `--staff EMAIL is required`},
		{[]string{"gateway", "add", "--region", "eu-west"}, `--endpoint is required`},
		{[]string{"staff", "add", "--email", "x@example.com"}, `--role is required`},
		{[]string{"staff", "role", "--role", "admin"}, `name the staff account`},
		{[]string{"staff", "disable", "stf_x", "--email", "x@example.com"}, `not both`},
		{[]string{"disclosure", "add", "--reference", "AG-1"}, `--authority is required`},
		{[]string{"disclosure", "list", "--period", "2026"}, `--period:`},
		{[]string{"processor", "add", "--name", "n", "--purpose", "p"}, `--categories is required`},
		{[]string{"stats", "usage", "--from", "2026-01-01"}, `--to is required`},
		{[]string{"stats", "usage", "--from", "2026-01-01", "--to", "31.1.2026"}, `--to "31.1.2026": want YYYY-MM-DD`},
		{[]string{"stats", "usage", "--from", "2026-01-01", "--to", "2026-01-31", "--json", "--format", "table"}, `do not go together`},
		{[]string{"records", "--format", "pdf"}, `--format must be markdown or json`},
		{[]string{"audit", "verify", "--json"}, `--json needs --head`},
		{[]string{"audit", "verify", "--head", "nonsense"}, `--head:`},
		{[]string{"announce", "--subject", "Maintenance"}, `--body-file is required`},
		{[]string{"privacy", "deny", "prq_x"}, `--reason is required`},
		{[]string{"disclosure", "add", "--reference", "R", "--authority", "A", "--jurisdiction", "DE", "--legal-basis", "B",
			"--type", "court-order", "--received", "2026-03-02", "--scope", "S", "--decision", "refused", "--gag-until", "later"},
			`--gag-until "later": want YYYY-MM-DD`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			r := runCLI(offline(t), append(append([]string{"admin"}, c.args...), "--data", data)...)
			if r.status != cli.ExitUsage {
				t.Fatalf("status: got %d (%q), want %d", r.status, r.msg, cli.ExitUsage)
			}
			if !strings.Contains(r.msg, c.want) || strings.Contains(r.msg, "\n") || !strings.HasSuffix(r.msg, " --help'") {
				t.Errorf("message: got %q, want one line containing %q and a hint to run --help", r.msg, c.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the data directory was created (%v): the check came after opening it", err)
			}
		})
	}
}
