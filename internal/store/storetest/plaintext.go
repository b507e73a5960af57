package storetest

import (
	"database/sql"
	"reflect"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// execAll runs each statement on db.
func execAll(t *testing.T, db *sql.DB, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// testPlainTexts writes records as the versions before sealing did, with
// plaintext free text, and checks that PlainTexts finds exactly those,
// that SealPlainTexts replaces the plaintext by the sealed text and what
// the sealer keeps (or only empties an erased account's request) unless
// the record changed meanwhile.
func testPlainTexts(t *testing.T, b Backend) {
	ctx := t.Context()
	s, db := b.OpenWithDB(t)
	mkAccount(t, s, "acc_l1")
	mkAccount(t, s, "acc_l2")
	mkDevice(t, s, "acc_l1", "dev_l1", 1)
	mkDevice(t, s, "acc_l1", "dev_l2", 2)
	mkDevice(t, s, "acc_l2", "dev_l3", 3)
	mkRequest(t, s, "prq_l1", "acc_l1", store.RequestAccess, store.RequestCompleted, 0)
	mkRequest(t, s, "prq_l2", "acc_l1", store.RequestAccess, store.RequestDenied, 0)
	mkRequest(t, s, "prq_l3", "acc_l2", store.RequestErasure, store.RequestCompleted, 0)
	mkRequest(t, s, "prq_l4", "acc_l2", store.RequestObjection, store.RequestCompleted, 0)
	mkRequest(t, s, "prq_l5", "acc_l2", store.RequestAccess, store.RequestCompleted, 0)
	run := &store.NoticeRun{ID: "ntc_l", Kind: "announcement", Subject: "Maintenance", Body: "Tonight.", CreatedAt: t0()}
	must(t, "CreateNoticeRun", s.CreateNoticeRun(ctx, run))
	if _, err := s.PostNoticeBatch(ctx, run, store.Flags{}, []string{"msg_n1", "msg_n2"}, t0(), 2); err != nil {
		t.Fatal(err)
	}
	must(t, "PostMessage", s.PostMessage(ctx, &store.Message{ID: "msg_s1", AccountID: "acc_l1", Kind: "k", Sealed: []byte("x"), CreatedAt: t0()}))
	// What earlier versions wrote: plaintext names, messages, request
	// texts; erased accounts' requests, detached, some text left.
	execAll(t, db,
		`UPDATE devices SET name = 'Alice''s laptop', name_sealed = NULL WHERE id = 'dev_l1'`,
		`UPDATE devices SET name = 'Alice''s phone', name_sealed = NULL WHERE id = 'dev_l3'`,
		`INSERT INTO inbox (id, account_id, kind, subject, body, created_at) VALUES ('msg_p1', 'acc_l1', 'privacy-denied', 'Denied', 'Because.', 1)`,
		`UPDATE privacy_requests SET sealed = NULL, details = 'my old details', outcome = 'Done: we fixed it' WHERE id = 'prq_l1'`,
		`UPDATE privacy_requests SET sealed = NULL, denied_reason = 'Too early', outcome = 'Denied: Too early' WHERE id = 'prq_l2'`,
		`UPDATE privacy_requests SET sealed = NULL, account_id = NULL, outcome = 'Erased.' WHERE id = 'prq_l3'`,
		`UPDATE privacy_requests SET sealed = NULL, account_id = NULL, extended_reason = 'Busy', outcome = 'A note' WHERE id = 'prq_l4'`,
		`UPDATE privacy_requests SET sealed = NULL, account_id = NULL, outcome = '' WHERE id = 'prq_l5'`,
	)
	pt := func(kind, id, acct string, fields map[string]string, meta ...string) store.PlainText {
		p := store.PlainText{Kind: kind, ID: id, AccountID: acct, Fields: fields}
		if len(meta) == 2 {
			p.Meta = map[string]string{"type": meta[0], "status": meta[1]}
		}
		return p
	}
	want := map[string][]store.PlainText{
		store.PlainDevices: {
			pt(store.PlainDevices, "dev_l1", "acc_l1", map[string]string{"name": "Alice's laptop"}),
			pt(store.PlainDevices, "dev_l3", "acc_l2", map[string]string{"name": "Alice's phone"}),
		},
		store.PlainInbox: {pt(store.PlainInbox, "msg_p1", "acc_l1", map[string]string{"subject": "Denied", "body": "Because."})},
		store.PlainRequests: {
			pt(store.PlainRequests, "prq_l1", "acc_l1", map[string]string{"details": "my old details", "extended_reason": "", "denied_reason": "", "outcome": "Done: we fixed it"},
				store.RequestAccess, store.RequestCompleted),
			pt(store.PlainRequests, "prq_l2", "acc_l1", map[string]string{"details": "", "extended_reason": "", "denied_reason": "Too early", "outcome": "Denied: Too early"},
				store.RequestAccess, store.RequestDenied),
			pt(store.PlainRequests, "prq_l4", "", map[string]string{"details": "", "extended_reason": "Busy", "denied_reason": "", "outcome": "A note"},
				store.RequestObjection, store.RequestCompleted),
		},
	}
	for kind, w := range want {
		got, err := s.PlainTexts(ctx, kind, "", 10)
		must(t, "PlainTexts "+kind, err)
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("PlainTexts %s: got %+v, want %+v", kind, got, w)
		}
		// Paging by ID.
		page, err := s.PlainTexts(ctx, kind, w[0].ID, 1)
		must(t, "PlainTexts page", err)
		if len(w) > 1 && (len(page) != 1 || page[0].ID != w[1].ID) {
			t.Fatalf("PlainTexts %s after %s: got %+v, want %s", kind, w[0].ID, page, w[1].ID)
		}
	}
	_, err := s.PlainTexts(ctx, "accounts", "", 10)
	wantCode(t, "PlainTexts unknown kind", err, errs.Invalid)
	_, err = s.SealPlainTexts(ctx, []store.Sealing{{PlainText: want[store.PlainDevices][0]}})
	wantCode(t, "SealPlainTexts without sealed text", err, errs.Invalid)
	_, err = s.SealPlainTexts(ctx, []store.Sealing{{PlainText: want[store.PlainRequests][0], Sealed: []byte("x"),
		Plain: map[string]string{"status": "completed"}}})
	wantCode(t, "SealPlainTexts keeping a column that is not plaintext", err, errs.Invalid)

	// dev_l3 is renamed before its sealing lands: left alone.
	must(t, "rename", func() error {
		_, err := s.UpdateDevice(ctx, "acc_l2", "dev_l3", store.DeviceUpdate{SealedName: []byte("new sealed")}, t0())
		return err
	}())
	var ss []store.Sealing
	for _, kind := range []string{store.PlainDevices, store.PlainInbox, store.PlainRequests} {
		for _, p := range want[kind] {
			x := store.Sealing{PlainText: p, Sealed: []byte("sealed " + p.ID)}
			if p.AccountID == "" {
				x.Sealed = nil
			}
			if p.ID == "prq_l2" {
				x.Plain = map[string]string{"outcome": "Denied."}
			}
			ss = append(ss, x)
		}
	}
	n, err := s.SealPlainTexts(ctx, ss)
	must(t, "SealPlainTexts", err)
	if n != len(ss)-1 {
		t.Fatalf("SealPlainTexts: got %d records changed, want %d (all but the renamed device)", n, len(ss)-1)
	}
	for _, kind := range []string{store.PlainDevices, store.PlainInbox, store.PlainRequests} {
		left, err := s.PlainTexts(ctx, kind, "", 10)
		must(t, "PlainTexts after", err)
		if len(left) != 0 {
			t.Fatalf("PlainTexts %s after sealing: got %+v, want none", kind, left)
		}
	}
	d, err := s.Device(ctx, "acc_l1", "dev_l1")
	must(t, "Device", err)
	if d.Name != "" || string(d.SealedName) != "sealed dev_l1" {
		t.Fatalf("sealed device: got name %q sealed %q", d.Name, d.SealedName)
	}
	if d, _ := s.Device(ctx, "acc_l2", "dev_l3"); d.Name != "" || string(d.SealedName) != "new sealed" {
		t.Fatalf("renamed device: got name %q sealed %q, want the rename", d.Name, d.SealedName)
	}
	ms, _, err := s.Messages(ctx, "acc_l1", 10)
	must(t, "Messages", err)
	for _, m := range ms {
		if m.ID == "msg_p1" && (m.Subject != "" || m.Body != "" || string(m.Sealed) != "sealed msg_p1") {
			t.Fatalf("sealed message: got %+v", m)
		}
		if m.ID == "msg_n1" && (m.Subject != "Maintenance" || m.Body != "Tonight." || m.Sealed != nil) {
			t.Fatalf("notice message: got %+v, want the run's text kept", m)
		}
	}
	for id, w := range map[string]struct{ sealed, outcome string }{
		"prq_l1": {"sealed prq_l1", ""}, "prq_l2": {"sealed prq_l2", "Denied."},
		"prq_l3": {"", "Erased."}, "prq_l4": {"", ""}, "prq_l5": {"", ""},
	} {
		r, err := s.PrivacyRequest(ctx, id)
		must(t, "PrivacyRequest", err)
		if string(r.Sealed) != w.sealed || r.Outcome != w.outcome || r.Details != "" || r.ExtendedReason != "" || r.DeniedReason != "" {
			t.Errorf("%s after sealing: got %+v, want sealed %q, outcome %q, no plaintext", id, r, w.sealed, w.outcome)
		}
	}
}

// testErasureClearsPlaintext erases an account whose requests were
// written before their texts were sealed: none of their plaintext is
// left, the erasure's own outcome excepted.
func testErasureClearsPlaintext(t *testing.T, b Backend) {
	ctx := t.Context()
	s, db := b.OpenWithDB(t)
	erasureFixture(t, s, "acc_e1", "prq_e1", 1101)
	mkRequest(t, s, "prq_e1_new", "acc_e1", store.RequestAccess, store.RequestCompleted, 0)
	must(t, "outcome", func() error {
		_, err := s.UpdatePrivacyRequest(ctx, "prq_e1_new", func(r *store.PrivacyRequest) error {
			r.Outcome = "Your export is ready."
			return nil
		})
		return err
	}())
	execAll(t, db, `UPDATE privacy_requests SET sealed = NULL, details = 'old details', extended_reason = 'old reason',
		denied_reason = 'old denial', outcome = 'Denied: old denial' WHERE id = 'prq_e1_old'`)
	// The staff's notes on telling the erasure's recipients, sealed and
	// (written before they were sealed) in plaintext.
	must(t, "MergeRequestRecipients", s.MergeRequestRecipients(ctx, "prq_e1", []store.RequestRecipient{
		{Processor: "SMTP relay", Categories: []string{"account.email"}, FirstAt: t0(), LastAt: t0()},
		{Processor: "SMS gateway", Categories: []string{"account.mobile"}, FirstAt: t0(), LastAt: t0()},
	}))
	must(t, "NoteRequestRecipient", s.NoteRequestRecipient(ctx, "prq_e1", "SMTP relay", store.RecipientTold, "", []byte("sealed"), "stf_1", t0()))
	must(t, "NoteRequestRecipient", s.NoteRequestRecipient(ctx, "prq_e1", "SMS gateway", store.RecipientTold, "old note", nil, "stf_1", t0()))
	_, err := s.EraseAccount(ctx, store.Erasure{RequestID: "prq_e1", AccountID: "acc_e1", At: t0().Add(time.Hour), Outcome: "Erased."})
	must(t, "EraseAccount", err)
	rs, err := s.RequestRecipients(ctx, "prq_e1")
	must(t, "RequestRecipients", err)
	for _, x := range rs {
		if x.Note != "" || x.NoteSealed != nil || x.Status != store.RecipientTold || x.NotedBy != "stf_1" {
			t.Errorf("recipient %s after erasure: got %+v, want told by stf_1, without a note", x.Processor, x)
		}
	}
	if len(rs) != 2 {
		t.Errorf("recipients after erasure: got %d, want 2", len(rs))
	}
	for id, outcome := range map[string]string{"prq_e1": "Erased.", "prq_e1_old": "", "prq_e1_new": "Your export is ready."} {
		r, err := s.PrivacyRequest(ctx, id)
		must(t, "PrivacyRequest", err)
		if r.AccountID != "" || r.Sealed != nil || r.Details != "" || r.ExtendedReason != "" || r.DeniedReason != "" || r.Outcome != outcome {
			t.Errorf("%s after erasure: got %+v, want detached, no text, outcome %q", id, r, outcome)
		}
	}
}
