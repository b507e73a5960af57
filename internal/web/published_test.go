package web_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// published is the operator's configuration the publishing tests use:
// sessions kept 30 days instead of 90, and a controller with a DPO but no
// phone and no EU representative.
func published(c *config.Settings) {
	c.Retention = []string{"usage.sessions=30"}
	c.Controller = controller.Identity{Name: "Example VPN GmbH", Address: "1 Example Street, 10115 Berlin, Germany",
		Email: "privacy@example.org", DPO: controller.DPO{Name: "Dana Officer", Email: "dpo@example.org"}}
}

// TestPublishedRetentionAndController: with --retention
// usage.sessions=30, every page and export the portal and console publish
// states 30 days for session intervals, never the default 90, and names
// the configured controller; what is not configured is said in plain
// words (to users without naming flags).
func TestPublishedRetentionAndController(t *testing.T) {
	e := newEnvWith(t, published)
	const want30 = "30 days after the session ended"
	const stale = "90 days"

	// The data page, one click from the home page.
	anon := e.client(t)
	if _, landing := anon.get("/"); !strings.Contains(landing, `href="/data"`) {
		t.Errorf("the home page does not link to the data page")
	}
	resp, home := anon.get("/data")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /data: %d", resp.StatusCode)
	}
	sessions := section(t, home, `id="`+inventory.IDSessions+`"`, "</article>")
	if !strings.Contains(sessions, want30) || !strings.Contains(sessions, "Deleted 30 days after the session ended") ||
		strings.Contains(sessions, stale) {
		t.Errorf("home page, session intervals: want %q and no %q, got\n%s", want30, stale, sessions)
	}
	ctl := html.UnescapeString(section(t, home, `id="controller-details"`, "</dl>"))
	for _, want := range []string{"Example VPN GmbH", "1 Example Street, 10115 Berlin, Germany", "privacy@example.org",
		"Dana Officer, dpo@example.org", "<dt>Phone</dt><dd>not stated by the operator</dd>",
		"<dt>EU representative (Art. 27 GDPR)</dt><dd>none designated</dd>"} {
		if !strings.Contains(ctl, want) {
			t.Errorf("home page controller lacks %q:\n%s", want, ctl)
		}
	}
	if strings.Contains(home, "--controller") || strings.Contains(home, "[not configured") {
		t.Errorf("home page names a setting to users")
	}

	// The JSON and HTML exports of an access request.
	const pw = "correct horse battery"
	u := e.client(t)
	u.signup("published@example.com", "+447911100777", pw)
	acct := e.accountID("published@example.com", pw)
	req := e.verifiedRequest(acct, store.RequestAccess, "", "published@example.com", "+447911100777", pw)
	page := "/privacy-centre/requests/" + req
	resp, body := u.post(page+"/export", url.Values{"csrf": {u.csrf(page)}, "format": {"json"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("JSON export: %d\n%s", resp.StatusCode, body)
	}
	var doc struct {
		Controller controller.Identity `json:"controller"`
		Article15  inventory.Article15Info
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	var cfg config.Settings
	published(&cfg)
	if doc.Controller != cfg.Controller {
		t.Errorf("JSON export controller = %+v, want %+v", doc.Controller, cfg.Controller)
	}
	for _, c := range doc.Article15.Categories {
		if c.ID == inventory.IDSessions && (c.Retention.Days != 30 || strings.Contains(c.Retention.Criteria, stale)) {
			t.Errorf("JSON export category sessions retention = %+v, want 30 days", c.Retention)
		}
	}
	for _, r := range doc.Article15.Retention {
		if r.Category == inventory.IDSessions && (r.Days != 30 || r.Rule != want30 || strings.Contains(r.Criteria, stale)) {
			t.Errorf("JSON export retention of sessions = %+v, want 30 days", r)
		}
	}
	resp, body = u.post(page+"/export", url.Values{"csrf": {u.csrf(page)}, "format": {"html"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTML export: %d", resp.StatusCode)
	}
	body = html.UnescapeString(body)
	for _, want := range []string{"Session intervals: " + want30, "Example VPN GmbH", "Dana Officer, dpo@example.org"} {
		if !strings.Contains(body, want) {
			t.Errorf("HTML export lacks %q", want)
		}
	}
	if strings.Contains(body, "Deleted 90 days") || strings.Contains(body, "90 days after the session") {
		t.Errorf("HTML export states the default 90 days")
	}

	// The console's record of processing, for the operator: unset
	// details name the flag that sets them.
	e.addStaff("records@staff.example", staff.RolePrivacyOfficer)
	po := e.client(t)
	po.staffLogin("records@staff.example")
	resp, rec := po.get("/console/records")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /console/records: %d", resp.StatusCode)
	}
	rec = html.UnescapeString(rec)
	sessions = section(t, rec, `id="cat-`+inventory.IDSessions+`"`, "</article>")
	if !strings.Contains(sessions, want30) || !strings.Contains(sessions, "default 90 days") ||
		strings.Contains(sessions, "Deleted 90 days") {
		t.Errorf("console records, session intervals: want %q (default 90 days), got\n%s", want30, sessions)
	}
	ctl = section(t, rec, `id="controller-details"`, "</dl>")
	for _, want := range []string{"Example VPN GmbH", "<dd>not configured (set --controller-phone)</dd>",
		"none designated (if there is one, set --controller-representative-name and --controller-representative-address)"} {
		if !strings.Contains(ctl, want) {
			t.Errorf("console records controller lacks %q:\n%s", want, ctl)
		}
	}

	// The console's retention page shows the rule in force.
	resp, ret := po.get("/console/retention")
	if resp.StatusCode != http.StatusOK || !strings.Contains(ret, want30) || !strings.Contains(ret, "(default 90)") {
		t.Errorf("console retention page: %d, want %q with the default noted", resp.StatusCode, want30)
	}
}

// TestHomePageUnconfiguredController: with no controller settings the
// home page says so in plain words and invents nothing.
func TestHomePageUnconfiguredController(t *testing.T) {
	e := newEnv(t)
	_, home := e.client(t).get("/data")
	ctl := section(t, home, `id="controller-details"`, "</dl>")
	for _, want := range []string{"<dt>Name</dt><dd>not stated by the operator</dd>", "<dt>Data protection officer</dt><dd>none designated</dd>"} {
		if !strings.Contains(ctl, want) {
			t.Errorf("home page controller lacks %q:\n%s", want, ctl)
		}
	}
	if c := section(t, home, `id="`+inventory.IDSessions+`"`, "</article>"); !strings.Contains(c, "90 days after the session ended") {
		t.Errorf("home page without overrides: sessions do not state the default 90 days:\n%s", c)
	}
}

// section returns the part of page from the first from to the next to.
func section(t *testing.T, page, from, to string) string {
	t.Helper()
	i := strings.Index(page, from)
	if i < 0 {
		t.Fatalf("page lacks %q", from)
	}
	j := strings.Index(page[i:], to)
	if j < 0 {
		t.Fatalf("page lacks %q after %q", to, from)
	}
	return page[i : i+j]
}
