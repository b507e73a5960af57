package inventory

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/errs"
)

func TestDefaultValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v, want nil", err)
	}
}

func TestEveryCategoryComplete(t *testing.T) {
	for _, c := range Default() {
		t.Run(c.ID, func(t *testing.T) {
			checks := map[string]bool{
				"name":        c.Name != "",
				"description": c.Description != "",
				"purpose":     len(c.Purposes) > 0,
				"basis":       strings.Contains(c.LegalBasis, "Art. 6(1)"),
				"retention":   c.Retention.Trigger != "" && c.Retention.Criteria != "",
				"storage":     c.Storage != nil && (len(c.Storage) > 0 || len(c.Files) > 0),
				"fields":      len(c.Fields) > 0,
				"subjects":    len(c.Subjects) > 0,
				"source":      c.Source == SourceYou || c.Source == SourceService,
				"recipients":  c.Recipients != nil,
			}
			for what, ok := range checks {
				if !ok {
					t.Errorf("category %s: %s missing or malformed", c.ID, what)
				}
			}
			seen := map[string]bool{}
			for _, tbl := range c.Storage {
				if seen[tbl] {
					t.Errorf("category %s lists table %q twice", c.ID, tbl)
				}
				seen[tbl] = true
			}
		})
	}
}

func TestRequiredCategoriesDeclared(t *testing.T) {
	inv := Default()
	for _, id := range []string{IDEmail, IDMobile, IDPassword, IDAccount, IDTokens, IDCodes, IDResetTokens, IDOutbound,
		IDDevices, IDPeerFeed, IDSessions, IDInbox, IDPrivacyRequests, IDPolicyAcceptance, IDAudit, IDDisclosures,
		IDStaff, IDLegalHolds, IDUnverified, IDOutbox} {
		if _, ok := inv.Category(id); !ok {
			t.Errorf("Category(%q) not found, want declared", id)
		}
	}
	if _, ok := inv.Category("nope"); ok {
		t.Errorf("Category(\"nope\") found, want absent")
	}
}

func TestTables(t *testing.T) {
	got := Default().Tables()
	want := []string{
		TableAccounts, TableAuditLog, TableBreaches, TableCodes, TableDevices, TableDisclosureAccounts, TableDisclosures,
		TableExportTokens, TableInbox, TableLegalHolds, TableLoginSlowdowns, TableOutbound, TablePeerChanges, TablePendingContacts,
		TablePolicyAcceptances, TablePrivacyRequests, TableProcessorTransfers, TableRateBudgets, TableRequestRecipients, TableResetTokens,
		TableStaff, TableStaffTokens, TableStatsLedger, TableTokens, TableUsageSessions,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Tables() = %v, want %v", got, want)
	}
	if got := Default().CategoriesIn(TableAccounts); !slices.Equal(got, []string{IDEmail, IDMobile, IDPassword, IDAccount, IDUnverified}) {
		t.Errorf("CategoriesIn(accounts) = %v, want email, mobile, password, account record, unverified sign-ups", got)
	}
	if got := Default().CategoriesIn("gateways"); got != nil {
		t.Errorf("CategoriesIn(gateways) = %v, want nil", got)
	}
}

func TestRetentionDefaults(t *testing.T) {
	tests := []struct {
		id      string
		days    int
		trigger Trigger
	}{
		{IDSessions, 90, TriggerEnded},
		{IDCodes, 1, TriggerUsedOrExpired},
		{IDTokens, 30, TriggerExpired},
		{IDResetTokens, 30, TriggerExpired},
		{IDOutbound, 1, TriggerCreated},
		{IDPrivacyRequests, 3 * 365, TriggerCompleted},
		{IDEmail, 30, TriggerAccountClosed},
		{IDMobile, 30, TriggerAccountClosed},
		{IDPassword, 30, TriggerAccountClosed},
		{IDAccount, 30, TriggerAccountClosed},
		{IDAudit, 6 * 365, TriggerCreated},
		{IDDisclosures, 6 * 365, TriggerCompleted},
	}
	inv := Default()
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			c, ok := inv.Category(tt.id)
			if !ok {
				t.Fatalf("category %s missing", tt.id)
			}
			if c.Retention.Days != tt.days || c.Retention.Trigger != tt.trigger {
				t.Errorf("retention = %d days after %s, want %d days after %s",
					c.Retention.Days, c.Retention.Trigger, tt.days, tt.trigger)
			}
			if got, want := c.Retention.Duration().Hours(), float64(tt.days*24); got != want {
				t.Errorf("Duration() = %vh, want %vh", got, want)
			}
		})
	}
}

func TestRetentionString(t *testing.T) {
	tests := []struct {
		r    Retention
		want string
	}{
		{Retention{Days: 90, Trigger: TriggerEnded}, "90 days after the session ended"},
		{Retention{Days: 1, Trigger: TriggerUsedOrExpired}, "1 day after it was used or expired"},
		{Retention{Days: 3 * 365, Trigger: TriggerCompleted}, "3 years after the request was completed"},
		{Retention{Days: 0, Trigger: TriggerAccountClosed}, "deleted when the account is closed"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.r.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRecipients(t *testing.T) {
	inv := Default()
	tests := []struct {
		id        string
		recipient string
		want      bool
	}{
		{IDEmail, RecipientSMTP, true},
		{IDEmail, RecipientSMS, false},
		{IDMobile, RecipientSMS, true},
		{IDMobile, RecipientSMTP, false},
		{IDPassword, RecipientSMTP, false},
	}
	for _, tt := range tests {
		t.Run(tt.id+"/"+tt.recipient, func(t *testing.T) {
			c, _ := inv.Category(tt.id)
			if got := slices.Contains(c.Recipients, tt.recipient); got != tt.want {
				t.Errorf("%s recipients contain %q = %v, want %v", tt.id, tt.recipient, got, tt.want)
			}
		})
	}
}

func TestObjectable(t *testing.T) {
	for _, c := range Default() {
		want := c.ID == IDSessions
		if c.Objectable != want {
			t.Errorf("category %s Objectable = %v, want %v", c.ID, c.Objectable, want)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		modify func(Inventory) Inventory
	}{
		{"duplicate id", func(inv Inventory) Inventory { return append(inv, inv[0]) }},
		{"empty id", func(inv Inventory) Inventory { inv[0].ID = ""; return inv }},
		{"no purpose", func(inv Inventory) Inventory { inv[1].Purposes = nil; return inv }},
		{"blank purpose", func(inv Inventory) Inventory { inv[1].Purposes = []string{" "}; return inv }},
		{"no basis", func(inv Inventory) Inventory { inv[2].LegalBasis = ""; return inv }},
		{"no storage", func(inv Inventory) Inventory { inv[3].Storage = nil; return inv }},
		{"duplicate table", func(inv Inventory) Inventory { inv[3].Storage = []string{"a", "a"}; return inv }},
		{"no retention", func(inv Inventory) Inventory { inv[4].Retention = Retention{}; return inv }},
		{"negative retention", func(inv Inventory) Inventory { inv[4].Retention.Days = -1; return inv }},
		{"no source", func(inv Inventory) Inventory { inv[5].Source = ""; return inv }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.modify(Default()).Validate(); errs.CodeOf(err) != errs.Invalid {
				t.Errorf("Validate() = %v, want code %q", err, errs.Invalid)
			}
		})
	}
}

func TestDefaultIsFresh(t *testing.T) {
	a := Default()
	a[0].Purposes[0] = "changed"
	a[0].Name = "changed"
	if b := Default(); b[0].Purposes[0] == "changed" || b[0].Name == "changed" {
		t.Errorf("Default() shares state between calls")
	}
	n := NeverKept()
	n[0] = "changed"
	if NeverKept()[0] == "changed" {
		t.Errorf("NeverKept() shares state between calls")
	}
}

func TestNeverKept(t *testing.T) {
	all := strings.ToLower(strings.Join(NeverKept(), "\n"))
	for _, want := range []string{"traffic", "ip address", "destinations", "dns", "byte counts", "quantum-resistant"} {
		if !strings.Contains(all, want) {
			t.Errorf("NeverKept() does not mention %q", want)
		}
	}
}

func TestRecordOfProcessing(t *testing.T) {
	inv := Default()
	ctl := controller.Identity{Name: "Example VPN GmbH", Email: "privacy@example.org"}
	rop := inv.RecordOfProcessing(ctl)
	if len(rop.Categories) != len(inv) {
		t.Errorf("RoP has %d categories, want %d", len(rop.Categories), len(inv))
	}
	if rop.Controller != ctl {
		t.Errorf("RoP controller = %+v, want %+v", rop.Controller, ctl)
	}
	for _, want := range []string{SubjectUsers, SubjectStaff} {
		if !slices.Contains(rop.DataSubjects, want) {
			t.Errorf("RoP data subjects %v lack %q", rop.DataSubjects, want)
		}
	}
	for _, want := range []string{RecipientSMTP, RecipientSMS} {
		if !slices.Contains(rop.Recipients, want) {
			t.Errorf("RoP recipients %v lack %q", rop.Recipients, want)
		}
	}
	if len(rop.SecurityMeasures) == 0 || rop.Transfers == "" || len(rop.Purposes) == 0 {
		t.Errorf("RoP lacks security measures, transfers or purposes: %+v", rop)
	}
}

// TestMarkdownController: configured details are printed; unset ones say
// so and name the flag that sets them, never a made-up setting.
func TestMarkdownController(t *testing.T) {
	md := Default().RecordOfProcessing(controller.Identity{Name: "Example | VPN", Email: "privacy@example.org",
		DPO: controller.DPO{Name: "Dana Officer", Email: "dpo@example.org"}}).Markdown()
	for _, want := range []string{
		"| Name | Example \\| VPN |",
		"| Email | privacy@example.org |",
		"| Data protection officer | Dana Officer, dpo@example.org |",
		"| Postal address | not configured (set --controller-address) |",
		"| EU representative (Art. 27 GDPR) | none designated (if there is one, set --controller-representative-name and --controller-representative-address) |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	if strings.Contains(md, "[not configured") {
		t.Errorf("Markdown holds a placeholder naming no real setting:\n%s", md)
	}
}

func TestMarkdown(t *testing.T) {
	inv := Default()
	md := inv.RecordOfProcessing(controller.Identity{Name: "Example | VPN"}).Markdown()
	for _, c := range inv {
		for _, want := range []string{c.Name, "`" + c.ID + "`", c.LegalBasis, c.Retention.String()} {
			if !strings.Contains(md, want) {
				t.Errorf("Markdown lacks %q for category %s", want, c.ID)
			}
		}
	}
	for _, want := range append([]string{"# Record of processing activities", "Example \\| VPN", "## Never recorded"}, NeverKept()...) {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
}

func TestRoPJSON(t *testing.T) {
	b, err := json.Marshal(Default().RecordOfProcessing(controller.Identity{}))
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if bytes.Contains(b, []byte("null")) {
		t.Errorf("RoP JSON contains null, want empty lists: %s", b)
	}
	var back RoP
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if len(back.Categories) != len(Default()) || back.Categories[0].Retention.Days != AccountGraceDays {
		t.Errorf("RoP JSON round trip lost categories: %+v", back.Categories[:1])
	}
	for _, key := range []string{`"controller"`, `"data_subjects"`, `"legal_basis"`, `"retention"`, `"third_country_transfers"`, `"security_measures"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("RoP JSON lacks key %s", key)
		}
	}
}

func TestArticle15(t *testing.T) {
	inv := Default()
	info := inv.Article15()
	var ids []string
	for _, r := range info.Rights {
		ids = append(ids, r.ID)
	}
	for _, want := range []string{"access", "rectification", "erasure", "restriction", "objection", "portability", "complaint"} {
		if !slices.Contains(ids, want) {
			t.Errorf("Article15 rights %v lack %q", ids, want)
		}
	}
	if len(info.Retention) != len(inv) || len(info.Categories) != len(inv) {
		t.Errorf("Article15 has %d retention rules and %d categories, want %d each", len(info.Retention), len(info.Categories), len(inv))
	}
	sources := map[Source]int{}
	for _, s := range info.Sources {
		sources[s.Source] += len(s.Categories)
	}
	if sources[SourceYou] == 0 || sources[SourceService] == 0 || sources[SourceYou]+sources[SourceService] != len(inv) {
		t.Errorf("Article15 sources = %v, want every category under one of the two sources", sources)
	}
	if len(info.Purposes) == 0 || len(info.Recipients) == 0 || info.AutomatedDecisions == "" || info.Transfers == "" {
		t.Errorf("Article15 lacks purposes, recipients, automated decisions or transfers: %+v", info)
	}
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if bytes.Contains(b, []byte("null")) {
		t.Errorf("Article15 JSON contains null")
	}
}

// hardCodedPeriod matches a period written into text, such as "30 days"
// or "a 30-day".
var hardCodedPeriod = regexp.MustCompile(`\b\d+[ -](day|year)s?\b`)

// TestCriteriaStateOnlyThePeriodInForce: a category's criteria mention no
// period but its own, so an override cannot leave a stale figure behind.
func TestCriteriaStateOnlyThePeriodInForce(t *testing.T) {
	for _, c := range Default() {
		rest := strings.ReplaceAll(c.Retention.Criteria, period(c.Retention.Days), "")
		if m := hardCodedPeriod.FindString(rest); m != "" {
			t.Errorf("category %s criteria state %q besides their own period: %q", c.ID, m, c.Retention.Criteria)
		}
		if c.Retention.DefaultDays != c.Retention.Days {
			t.Errorf("category %s DefaultDays = %d, want %d", c.ID, c.Retention.DefaultDays, c.Retention.Days)
		}
	}
}

func TestWithDays(t *testing.T) {
	inv := Default()
	got, err := inv.WithDays(map[string]int{IDSessions: 30, IDAccount: 60, IDAudit: 10 * 365, IDCodes: 0})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id       string
		days     int
		def      int
		rule     string
		criteria string
	}{
		{IDSessions, 30, SessionDays, "30 days after the session ended", "Deleted 30 days after the session ended"},
		{IDAccount, 60, AccountGraceDays, "60 days after the account is closed", "purged 60 days after closure"},
		// The account's email, mobile and password go with its record.
		{IDEmail, 60, AccountGraceDays, "60 days after the account is closed", "purged 60 days after closure"},
		{IDMobile, 60, AccountGraceDays, "60 days after the account is closed", "purged 60 days after closure"},
		{IDPassword, 60, AccountGraceDays, "60 days after the account is closed", "purged 60 days after closure"},
		// Staff accounts are kept as long as the access log.
		{IDAudit, 3650, AuditDays, "10 years after it was recorded", "Deleted 10 years after the entry was written"},
		{IDStaff, 3650, AuditDays, "10 years after the staff account was disabled", "10 years after it was disabled"},
		{IDCodes, 0, UsedCodeDays, "deleted when it was used or expired", "Deleted right after the code was used"},
		// Untouched.
		{IDTokens, ExpiredTokenDays, ExpiredTokenDays, "30 days after it expired", "otherwise deleted 30 days after it expires"},
		{IDLegalHolds, AuditDays, AuditDays, "6 years after the hold was released or ended", "6 years after it was released"},
	}
	for _, tt := range tests {
		c, _ := got.Category(tt.id)
		r := c.Retention
		if r.Days != tt.days || r.DefaultDays != tt.def || r.String() != tt.rule || !strings.Contains(r.Criteria, tt.criteria) {
			t.Errorf("%s: got %d days (default %d), %q, %q; want %d (default %d), %q, criteria containing %q",
				tt.id, r.Days, r.DefaultDays, r.String(), r.Criteria, tt.days, tt.def, tt.rule, tt.criteria)
		}
	}
	if c, _ := inv.Category(IDSessions); c.Retention.Days != SessionDays || !strings.Contains(c.Retention.Criteria, "90 days") {
		t.Errorf("WithDays modified its receiver: %+v", c.Retention)
	}
	// An explicit figure for a follower wins over its leader's.
	got, err = inv.WithDays(map[string]int{IDAccount: 60, IDEmail: 7})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := got.Category(IDEmail); c.Retention.Days != 7 {
		t.Errorf("email with its own figure: got %d days, want 7", c.Retention.Days)
	}
	for _, bad := range []map[string]int{{"nope": 3}, {IDSessions: -1}} {
		if _, err := inv.WithDays(bad); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("WithDays(%v) = %v, want code %q", bad, err, errs.Invalid)
		}
	}
}

func TestValidateFollows(t *testing.T) {
	for name, follows := range map[string]string{"unknown": "nope", "itself": IDStaff, "a follower": IDEmail} {
		inv := Default()
		for i := range inv {
			if inv[i].ID == IDStaff {
				inv[i].Retention.Follows = follows
			}
		}
		if err := inv.Validate(); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("staff following %s: Validate() = %v, want code %q", name, err, errs.Invalid)
		}
	}
}

// TestWithKEKRotation: what the inventory tells people about backups
// follows the rotation period in force, and survives a change of days.
func TestWithKEKRotation(t *testing.T) {
	for _, tc := range []struct {
		every time.Duration
		want  string
	}{
		{30 * 24 * time.Hour, "at most 30 days after the erasure"},
		{36 * time.Hour, "at least every 36 hours, so at most 36 hours after the erasure"},
		{365 * 24 * time.Hour, "at most 1 year after the erasure"},
		{0, "no automatic rotation is configured"},
	} {
		inv := Default().WithKEKRotation(tc.every)
		if got := inv.Backups(); !strings.Contains(got, tc.want) || got != BackupsText(tc.every) {
			t.Errorf("every %s: Backups() = %q, want it to say %q", tc.every, got, tc.want)
		}
		for _, id := range []string{IDEmail, IDMobile} {
			c, _ := inv.Category(id)
			if !strings.Contains(c.Retention.Criteria, BackupsText(tc.every)) || strings.Contains(c.Retention.Criteria, "{") {
				t.Errorf("every %s: %s criteria = %q, want the backups sentence", tc.every, id, c.Retention.Criteria)
			}
		}
		moved, err := inv.WithDays(map[string]int{IDAccount: 60})
		if err != nil {
			t.Fatal(err)
		}
		if c, _ := moved.Category(IDEmail); !strings.Contains(c.Retention.Criteria, tc.want) || !strings.Contains(c.Retention.Criteria, "60 days after") {
			t.Errorf("every %s, then 60 days: %q", tc.every, c.Retention.Criteria)
		}
	}
	if c, _ := Default().Category(IDEmail); !strings.Contains(c.Retention.Criteria, "at most 30 days after the erasure") {
		t.Errorf("default email criteria %q: want the default rotation", c.Retention.Criteria)
	}
}
