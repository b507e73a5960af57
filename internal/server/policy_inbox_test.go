package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/inbox"
	"github.com/nitronet/nitronet/internal/policy"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestPolicyAndInbox runs the policy and inbox API end to end on each
// engine: the shipped policy is version 1, a material change reaches every
// inbox and the outbox once, users accept it, and one account cannot touch
// another's messages.
func TestPolicyAndInbox(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			lim := httpedge.Limits{SignupPerHour: 1e6, SignupBurst: 1e4, LoginPerHour: 1e6, LoginBurst: 1e4,
				VerifyPerHour: 1e6, VerifyBurst: 1e4, ResetPerHour: 1e6, ResetBurst: 1e4}
			e := newEnv(t, b, &lim)
			ctx := t.Context()
			if err := e.srv.Policy.Seed(ctx); err != nil {
				t.Fatal(err)
			}
			idA, tokA := e.signup("alice@example.com", "+447911100711")
			_, tokB := e.signup("bob@example.com", "+447911100722")

			cur := e.want("GET", "/api/v1/policy", "", nil, 200)["documents"].([]any)
			if len(cur) != 1 {
				t.Fatalf("GET /policy: got %d documents, want the shipped privacy policy", len(cur))
			}
			v1 := cur[0].(map[string]any)
			if v1["version"].(float64) != 1 || v1["material"].(bool) || !strings.Contains(v1["body"].(string), "Nitronet VPN is a no-log VPN service") {
				t.Fatalf("shipped policy: got version %v material %v, want version 1, not material, the policy text", v1["version"], v1["material"])
			}
			// Nothing to accept until a material change.
			if p := e.want("GET", "/api/v1/me/policy", tokA, nil, 200)["pending"].([]any); len(p) != 0 {
				t.Fatalf("pending before a material change: got %v, want none", p)
			}

			officer := staff.Principal{ID: "stf_po", Role: staff.RolePrivacyOfficer}
			if _, err := e.srv.Policy.Publish(ctx, staff.Principal{ID: "stf_s", Role: staff.RoleSupport}, "privacy", "x", true); err == nil {
				t.Fatal("support published a policy, want Forbidden")
			}
			pub, err := e.srv.Policy.Publish(ctx, officer, "privacy", "Version two of the policy.", true)
			if err != nil {
				t.Fatal(err)
			}
			if pub.Document.Version != 2 || pub.Run == nil {
				t.Fatalf("Publish: got version %d, run %v; want version 2 with a notice run", pub.Document.Version, pub.Run)
			}
			p, err := e.srv.Notices.Run(ctx, pub.Run.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.Posted != 2 || p.Queued != 2 || p.Sent != 0 || !p.Done {
				t.Fatalf("notice progress: got %+v, want 2 posted, 2 queued, done", p)
			}
			// Sent once the queue delivered them.
			e.drain()
			if p, err = e.srv.Notices.Progress(ctx, pub.Run.ID); err != nil || p.Sent != 2 || p.Queued != 0 {
				t.Fatalf("notice progress after delivery: got %+v (%v), want 2 sent", p, err)
			}
			for _, to := range []string{"alice@example.com", "bob@example.com"} {
				if msg := e.lastMessage("policy-change", to); !strings.Contains(msg, "privacy policy") {
					t.Fatalf("policy email to %s: got %q", to, msg)
				}
			}
			e.drain()
			if n := countFiles(t, filepath.Join(e.dir, "outbox"), "-policy-change-"); n != 2 {
				t.Fatalf("policy emails in the outbox: got %d, want 2", n)
			}

			box := e.want("GET", "/api/v1/me/inbox", tokA, nil, 200)
			msgs := box["messages"].([]any)
			if len(msgs) != 1 || box["unread"].(float64) != 1 || msgs[0].(map[string]any)["kind"] != "policy-change" {
				t.Fatalf("alice's inbox: got %v, want one unread policy-change notice", box)
			}
			msgID := msgs[0].(map[string]any)["id"].(string)
			// Bob cannot mark Alice's message; garbage ids are 404 too.
			e.want("POST", "/api/v1/me/inbox/"+msgID+"/read", tokB, nil, 404)
			e.want("POST", "/api/v1/me/inbox/nonsense/read", tokA, nil, 404)
			e.want("POST", "/api/v1/me/inbox/"+msgID+"/read", "", nil, 401)
			e.want("POST", "/api/v1/me/inbox/"+msgID+"/read", tokA, nil, 204)
			if u := e.want("GET", "/api/v1/me/inbox", tokA, nil, 200)["unread"].(float64); u != 0 {
				t.Fatalf("unread after marking: got %v, want 0", u)
			}
			if u := e.want("GET", "/api/v1/me/inbox", tokB, nil, 200)["unread"].(float64); u != 1 {
				t.Fatalf("bob's unread: got %v, want 1", u)
			}

			pending := e.want("GET", "/api/v1/me/policy", tokA, nil, 200)["pending"].([]any)
			if len(pending) != 1 || pending[0].(map[string]any)["id"] != pub.Document.ID {
				t.Fatalf("pending after material change: got %v, want version 2", pending)
			}
			// Only the current version can be accepted.
			e.want("POST", "/api/v1/me/policy/accept", tokA, map[string]string{"document_id": v1["id"].(string)}, 403)
			e.want("POST", "/api/v1/me/policy/accept", tokA, map[string]string{"document_id": "pol_nope"}, 404)
			e.want("POST", "/api/v1/me/policy/accept", tokA, map[string]string{}, 400)
			acc := e.want("POST", "/api/v1/me/policy/accept", tokA, map[string]string{"document_id": pub.Document.ID}, 200)
			if acc["version"].(float64) != 2 || acc["accepted_at"] == "" {
				t.Fatalf("accept: got %v, want version 2 with a time", acc)
			}
			me := e.want("GET", "/api/v1/me/policy", tokA, nil, 200)
			// Version 1 was accepted at sign-up.
			if len(me["pending"].([]any)) != 0 || len(me["accepted"].([]any)) != 2 {
				t.Fatalf("after accepting: got %v, want nothing pending and two acceptances (at sign-up, and now)", me)
			}
			if len(e.want("GET", "/api/v1/me/policy", tokB, nil, 200)["pending"].([]any)) != 1 {
				t.Fatal("bob's pending: want version 2 still pending")
			}
			// A later non-material version needs no new acceptance.
			if _, err := e.srv.Policy.Publish(ctx, officer, "privacy", "Typo fixed.", false); err != nil {
				t.Fatal(err)
			}
			if len(e.want("GET", "/api/v1/me/policy", tokA, nil, 200)["pending"].([]any)) != 0 {
				t.Fatal("a non-material version made alice's acceptance pending again")
			}
			hist := e.want("GET", "/api/v1/policy/history", "", nil, 200)["documents"].([]any)
			if len(hist) != 3 {
				t.Fatalf("history: got %d, want 3", len(hist))
			}
			if name, data, err := e.srv.Policy.ExportSection(ctx, idA); err != nil || name != "policy_acceptances" ||
				len(data.([]policy.Acceptance)) != 2 {
				t.Fatalf("policy ExportSection: got %q, %v, %v; want policy_acceptances with two entries", name, data, err)
			}
			if name, data, err := e.srv.Inbox.ExportSection(ctx, idA); err != nil || name != "inbox" ||
				len(data.([]inbox.Message)) != 1 {
				t.Fatalf("inbox ExportSection: got %q, %v, %v; want inbox with one message", name, data, err)
			}

			// An announcement reaches every inbox; email only if asked.
			run, err := e.srv.Policy.Announce(ctx, staff.Principal{ID: "stf_a", Role: staff.RoleAdmin}, "Maintenance", "Sunday 02:00 UTC.", false)
			if err != nil {
				t.Fatal(err)
			}
			if p, err := e.srv.Notices.Run(ctx, run.ID, nil); err != nil || p.Posted != 2 || p.Sent != 0 {
				t.Fatalf("announcement: got %+v, %v; want 2 posted, no email", p, err)
			}
			e.drain()
			if n := countFiles(t, filepath.Join(e.dir, "outbox"), "-announcement-"); n != 0 {
				t.Fatalf("announcement emails: got %d, want 0", n)
			}
			if len(e.want("GET", "/api/v1/me/inbox", tokB, nil, 200)["messages"].([]any)) != 2 {
				t.Fatal("bob's inbox: want the policy notice and the announcement")
			}
		})
	}
}

func countFiles(t *testing.T, dir, part string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, en := range entries {
		if strings.Contains(en.Name(), part) {
			n++
		}
	}
	return n
}
