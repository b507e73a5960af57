package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAdminStatsBudget is the Done-when: a report that would
// exceed the quarter's budget is refused, naming the flag; `admin stats
// budget` shows what is spent, what is left and who ran which report;
// only a privacy officer may go beyond the per-report limits, with a
// reason.
func TestAdminStatsBudget(t *testing.T) {
	h, _ := newHarness(t, nil)
	d := []string{"--data", h.dataDir}
	admin := func(args ...string) []string { return append(append([]string{"admin"}, args...), d...) }
	const pw = "correct horse battery staple"
	as := func(email string) { h.env["NITRONET_STAFF"], h.env["NITRONET_STAFF_PASSWORD"] = email, pw }
	h.must(pw+"\n", admin("staff", "add", "--email", "ops@example.com", "--role", "admin")...)
	as("ops@example.com")
	h.must(pw+"\n", admin("staff", "add", "--email", "po@example.com", "--role", "privacy_officer")...)
	usage := func(extra ...string) []string {
		return admin(append([]string{"stats", "usage", "--from", "2026-01-01", "--to", "2026-01-31"}, extra...)...)
	}

	out := h.must("", admin("stats", "budget")...)
	if !strings.Contains(out, "epsilon 0 spent of 3, 3 left") || !strings.Contains(out, "No report") {
		t.Fatalf("budget before any report: got %q", out)
	}
	// Per-report limits, and who may override them.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--epsilon", "1.5"}, "--epsilon: a report may spend at most epsilon 1"},
		{[]string{"--min-group", "5"}, "--min-group: a report needs a minimum group of at least 10"},
		{[]string{"--epsilon", "2", "--override", "board decision 12"}, "may not"},
	} {
		_, err := h.run("", usage(tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("stats usage %v as admin: got %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	as("po@example.com")
	out = h.must("", usage("--epsilon", "2", "--override", "board decision 12", "--json")...)
	var r struct {
		Budget struct {
			Quarter             string
			Budget, Spent, Left float64
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Budget.Spent != 2 || r.Budget.Left != 1 || r.Budget.Budget != 3 {
		t.Fatalf("usage --json budget: got %s (%v), want 2 spent and 1 left", out, err)
	}
	as("ops@example.com")
	h.must("", usage()...) // epsilon 1: the budget is spent
	_, err := h.run("", usage("--epsilon", "0.1")...)
	if err == nil || !strings.Contains(err.Error(), "--epsilon: the statistics budget of "+r.Budget.Quarter+" has epsilon 0 left of 3") {
		t.Fatalf("report over the budget: got %v, want it refused naming --epsilon and the quarter", err)
	}

	out = h.must("", admin("stats", "budget", "--json")...)
	l := jsonList(t, "stats budget", out, "entries", "quarter", "budget", "spent", "left")
	if len(l) != 2 {
		t.Fatalf("ledger: got %s, want 2 entries", out)
	}
	wantKeys(t, "ledger entry", l[0], "id", "report", "staff_id", "staff_role", "epsilon", "min_group", "override", "spent_at")
	// Both ran within one second: find the privacy officer's.
	e := decodeObject(t, "ledger entry", string(l[0]))
	if string(e["staff_role"]) != `"privacy_officer"` {
		e = decodeObject(t, "ledger entry", string(l[1]))
	}
	if string(e["staff_role"]) != `"privacy_officer"` || string(e["override"]) != `"board decision 12"` ||
		string(e["epsilon"]) != "2" || string(e["report"]) != `"usage 2026-01-01..2026-01-31"` {
		t.Errorf("the override's entry: got %s", out)
	}
	wantTime(t, "spent_at", e["spent_at"])
	out = h.must("", admin("stats", "budget")...)
	if !strings.Contains(out, "epsilon 3 spent of 3, 0 left") || !strings.Contains(out, "board decision 12") {
		t.Errorf("budget text: got %q", out)
	}
	if _, err := h.run("", admin("stats", "budget", "--quarter", "2026-Q7")...); err == nil || !strings.Contains(err.Error(), "--quarter") {
		t.Errorf("bad --quarter: got %v, want an error naming --quarter", err)
	}
	if out := h.must("", admin("stats", "budget", "--quarter", "2020-Q1", "--json")...); !strings.Contains(out, `"spent": 0`) &&
		!strings.Contains(out, `"spent":0`) {
		t.Errorf("an empty quarter: got %s", out)
	}
}
