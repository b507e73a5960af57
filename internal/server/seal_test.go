package server_test

import (
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestSealPlaintext writes free text as the versions before sealing did,
// in plaintext columns (a device name, a message to one account, request
// details, reasons and a staff note, and an erased account's request),
// and checks that the services read it as before, that the sealing job
// seals it (or, for the erased account, empties it) so that no row holds
// it while the services still show the same, and that a second run finds
// nothing left.
func TestSealPlaintext(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testSealPlaintext(t, b) })
	}
}

func testSealPlaintext(t *testing.T, b storetest.Backend) {
	e := newDBEnv(t, b)
	ctx := t.Context()
	officer := staff.Principal{ID: "stf_officer", Role: staff.RolePrivacyOfficer}
	accID, tok := e.signup("legacy@example.com", "+447911100931")
	dev := e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "sealed name", "public_key": newKey(t)}, 201)["id"].(string)
	denied := e.want("POST", "/api/v1/privacy/requests", tok, map[string]string{"type": "access", "details": "sealed details"}, 201)["id"].(string)
	if _, err := e.srv.Privacy.Deny(ctx, officer, denied, "sealed reason"); err != nil {
		t.Fatal(err)
	}
	rect := e.want("POST", "/api/v1/privacy/requests", tok, map[string]string{"type": "rectification"}, 201)["id"].(string)
	msgs, _, err := e.srv.Inbox.List(ctx, accID, 10)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("inbox: got %v, %v; want the denial notice", msgs, err)
	}
	msg := msgs[0].ID

	// What a version before sealing wrote.
	const erased = "prq_aaaaaaaaaaaaaaaaaaaaaaaaaa"
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE devices SET name = 'Legacy laptop name', name_sealed = NULL WHERE id = $1`, []any{dev}},
		{`UPDATE inbox SET subject = 'Legacy subject', body = 'Legacy body', sealed = NULL WHERE id = $1`, []any{msg}},
		{`UPDATE privacy_requests SET sealed = NULL, details = 'legacy details', denied_reason = 'legacy denial',
			outcome = 'Denied: legacy denial' WHERE id = $1`, []any{denied}},
		{`UPDATE privacy_requests SET sealed = NULL, status = 'completed', outcome = 'legacy staff note' WHERE id = $1`, []any{rect}},
		{`INSERT INTO privacy_requests (id, account_id, type, status, details, received_at, due_at, extended_reason,
			denied_reason, outcome) VALUES ($1, NULL, 'access', 'completed', 'erased details', 1, 2, 'erased reason', '', 'erased note')`,
			[]any{erased}},
	} {
		if _, err := e.db.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	legacy := []string{"Legacy laptop name", "Legacy subject", "Legacy body", "legacy details", "legacy denial",
		"legacy staff note", "erased details", "erased reason", "erased note"}

	// The services read it as they read sealed text.
	check := func(when string) {
		t.Helper()
		ds := e.want("GET", "/api/v1/devices", tok, nil, 200)["devices"].([]any)
		if len(ds) != 1 || ds[0].(map[string]any)["name"] != "Legacy laptop name" {
			t.Fatalf("%s: devices %v, want the legacy name", when, ds)
		}
		ms, _, err := e.srv.Inbox.List(ctx, accID, 10)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, m := range ms {
			if m.ID == msg {
				found = m.Subject == "Legacy subject" && m.Body == "Legacy body"
			}
		}
		if !found {
			t.Fatalf("%s: inbox %+v, want message %s with the legacy text", when, ms, msg)
		}
		d := e.want("GET", "/api/v1/privacy/requests/"+denied, tok, nil, 200)
		if d["details"] != "legacy details" || d["denied_reason"] != "legacy denial" || d["outcome"] != "Denied: legacy denial" {
			t.Fatalf("%s: denied request %v, want the legacy details, reason and outcome", when, d)
		}
		r := e.want("GET", "/api/v1/privacy/requests/"+rect, tok, nil, 200)
		if r["outcome"] != "legacy staff note" {
			t.Fatalf("%s: completed request %v, want the legacy note as its outcome", when, r)
		}
	}
	check("before sealing")

	n, err := e.srv.SealPlaintext(ctx)
	if err != nil || n != 5 {
		t.Fatalf("SealPlaintext: got %d, %v; want 5 records (device, message, two requests, the erased one)", n, err)
	}
	check("after sealing")
	for table, rows := range storetest.Dump(t, e.engine, e.db) {
		for _, row := range rows {
			for _, v := range row {
				var s string
				switch v := v.(type) {
				case string:
					s = v
				case []byte:
					s = string(v)
				}
				for _, l := range legacy {
					if strings.Contains(s, l) {
						t.Errorf("after sealing, a row of %s holds %q", table, l)
					}
				}
			}
		}
	}
	r, err := e.srv.Store.PrivacyRequest(ctx, erased)
	if err != nil || r.Outcome != "" || r.Details != "" || r.ExtendedReason != "" || r.Sealed != nil {
		t.Fatalf("erased account's request: got %+v, %v; want no text", r, err)
	}
	if n, err := e.srv.SealPlaintext(ctx); err != nil || n != 0 {
		t.Fatalf("SealPlaintext again: got %d, %v; want 0", n, err)
	}
	// Staff see the same as the owner.
	v, err := e.srv.Privacy.StaffShow(ctx, officer, denied)
	if err != nil || v.Details != "legacy details" || v.Outcome != "Denied: legacy denial" {
		t.Fatalf("staff view after sealing: got %+v, %v", v, err)
	}
}
