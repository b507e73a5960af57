package privacy_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/inbox"
	"github.com/nitronet/nitronet/internal/policy"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/store"
)

// TestExportHTMLReadable: the HTML copy uses headings a person
// understands, shows no JSON keys or empty lists, gives every time in one
// format, and says "answered" rather than a due date for an answered
// request.
func TestExportHTMLReadable(t *testing.T) {
	at := time.Date(2026, 3, 4, 10, 5, 0, 0, time.UTC)
	done := at.Add(time.Hour)
	end := at.Add(30 * time.Minute)
	doc := &privacy.Document{SchemaVersion: privacy.SchemaVersion, GeneratedAt: at, RequestID: "prq_x", RequestType: store.RequestAccess,
		Account: privacy.ExportAccount{ID: "acc_x", Email: "a@example.com", Status: store.StatusActive, CreatedAt: at},
		Devices: []privacy.ExportDevice{{ID: "dev_1", Name: "laptop", CreatedAt: at, UpdatedAt: at}},
		Sessions: privacy.ExportSessions{Recording: "intervals", Count: 1, Intervals: []privacy.ExportInterval{
			{DeviceID: "dev_1", Region: "eu-west", Start: at, End: &end}}},
		PrivacyRequests: []privacy.Request{{ID: "prq_x", Type: store.RequestAccess, Status: store.RequestCompleted,
			ReceivedAt: at, DueAt: at.AddDate(0, 1, 0), CompletedAt: &done}},
		Sections: map[string]any{
			"disclosures": []any{},
			"inbox": []inbox.Message{{ID: "msg_1", Kind: "privacy-completed", Subject: "Your access request is completed",
				Body: "Done.", CreatedAt: at, RequestID: "prq_x"}},
			"policy_acceptances": []policy.Acceptance{{DocumentID: "pol_1", Kind: "privacy", Version: 2, AcceptedAt: at}},
		},
	}
	var b bytes.Buffer
	if err := privacy.RenderHTML(&b, doc); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, want := range []string{"<h2>Messages in your inbox</h2>", "<h2>Policies you accepted</h2>",
		"<h2>Orders from authorities about your account</h2>", "<th>Subject</th>", "<th>Accepted</th>",
		"4 Mar 2026, 10:05 UTC", "Answered 4 Mar 2026, 11:05 UTC", "<td>laptop</td><td>eu-west</td>"} {
		if !strings.Contains(s, want) {
			t.Errorf("HTML copy lacks %q", want)
		}
	}
	for _, bad := range []string{"[]", "disclosures:", "<h2>disclosures</h2>", "accepted_at", "created_at", "<pre>", "Due by 4 Apr 2026"} {
		if strings.Contains(s, bad) {
			t.Errorf("HTML copy holds %q", bad)
		}
	}
	if m := regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d`).FindString(s); m != "" {
		t.Errorf("HTML copy holds a timestamp in another format: %q", m)
	}
}
