package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

func testInbox(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acc_in1")
	mkAccount(t, s, "acc_in2")
	for i := range 3 {
		m := &store.Message{ID: fmt.Sprintf("msg_%d", i), AccountID: "acc_in1",
			Kind: "privacy-denied", Sealed: []byte(fmt.Sprintf("sealed %d", i)), CreatedAt: t0().Add(time.Duration(i) * time.Minute)}
		if i == 2 { // a message about a privacy request
			m.Kind, m.RequestID = "privacy-received", "prq_in1"
		}
		must(t, "PostMessage", s.PostMessage(ctx, m))
	}
	err := s.PostMessage(ctx, &store.Message{ID: "msg_x", AccountID: "acc_nope", Kind: "k", Sealed: []byte("s"), CreatedAt: t0()})
	wantCode(t, "PostMessage unknown account", err, errs.NotFound)
	err = s.PostMessage(ctx, &store.Message{ID: "msg_0", AccountID: "acc_in1", Kind: "k", Sealed: []byte("s"), CreatedAt: t0()})
	wantCode(t, "PostMessage duplicate id", err, errs.Conflict)
	for _, m := range []*store.Message{
		{ID: "msg_y", AccountID: "acc_in1", Kind: "k", CreatedAt: t0()},
		{ID: "msg_y", AccountID: "acc_in1", Kind: "k", Sealed: []byte("s"), Body: "in plaintext", CreatedAt: t0()},
		{ID: "msg_y", AccountID: "acc_in1", Kind: "k", Sealed: []byte("s"), Subject: "in plaintext", CreatedAt: t0()},
	} {
		wantCode(t, "PostMessage not sealed", s.PostMessage(ctx, m), errs.Invalid)
	}

	msgs, unread, err := s.Messages(ctx, "acc_in1", 10)
	must(t, "Messages", err)
	if len(msgs) != 3 || unread != 3 || msgs[0].ID != "msg_2" || msgs[2].ID != "msg_0" || string(msgs[0].Sealed) != "sealed 2" {
		t.Fatalf("Messages: got %d messages (first %v), %d unread; want 3 newest first, 3 unread", len(msgs), msgs, unread)
	}
	if msgs[0].RequestID != "prq_in1" || msgs[1].RequestID != "" {
		t.Fatalf("Messages: request ids %q, %q; want prq_in1 and none", msgs[0].RequestID, msgs[1].RequestID)
	}
	if msgs, _, _ := s.Messages(ctx, "acc_in1", 2); len(msgs) != 2 {
		t.Fatalf("Messages limit 2: got %d, want 2", len(msgs))
	}
	// Another account cannot read or mark the message.
	wantCode(t, "MarkRead other account", s.MarkRead(ctx, "acc_in2", "msg_1", t0()), errs.NotFound)
	wantCode(t, "MarkRead unknown", s.MarkRead(ctx, "acc_in1", "msg_nope", t0()), errs.NotFound)
	if msgs, unread, _ := s.Messages(ctx, "acc_in2", 10); len(msgs) != 0 || unread != 0 {
		t.Fatalf("acc_in2: got %d messages, %d unread; want 0, 0", len(msgs), unread)
	}
	readAt := t0().Add(time.Hour)
	must(t, "MarkRead", s.MarkRead(ctx, "acc_in1", "msg_1", readAt))
	must(t, "MarkRead again", s.MarkRead(ctx, "acc_in1", "msg_1", readAt.Add(time.Hour)))
	msgs, unread, _ = s.Messages(ctx, "acc_in1", 10)
	if unread != 2 || msgs[1].ReadAt == nil || !msgs[1].ReadAt.Equal(readAt) {
		t.Fatalf("after MarkRead: got unread %d, read_at %v; want 2, %v (first read kept)", unread, msgs[1].ReadAt, readAt)
	}
}

func testNoticeRuns(t *testing.T, s store.Store) {
	ctx := t.Context()
	const accounts = 7
	for i := range accounts {
		mkAccount(t, s, fmt.Sprintf("acc_n%02d", i))
	}
	closed := newAccount("acc_nclosed")
	closed.Status = store.StatusClosed
	must(t, "CreateAccount closed", s.CreateAccount(ctx, closed))

	run := &store.NoticeRun{ID: "ntc_1", Kind: "announcement", Subject: "Hello", Body: "World", Email: true, CreatedAt: t0()}
	must(t, "CreateNoticeRun", s.CreateNoticeRun(ctx, run))
	ids := func(batch int) []string {
		out := make([]string, 3)
		for i := range out {
			out[i] = fmt.Sprintf("msg_b%d_%d", batch, i)
		}
		return out
	}
	var posted []int
	for b := 0; ; b++ {
		n, err := s.PostNoticeBatch(ctx, run, store.Flags{}, ids(b), t0(), 3)
		must(t, "PostNoticeBatch", err)
		posted = append(posted, n)
		if n < 3 {
			break
		}
	}
	if !slices.Equal(posted, []int{3, 3, 1}) {
		t.Fatalf("batches: got %v, want [3 3 1] (7 active accounts, closed one skipped)", posted)
	}
	// Repeating finds nothing to do: every account has the message once.
	if n, err := s.PostNoticeBatch(ctx, run, store.Flags{}, ids(9), t0(), 3); err != nil || n != 0 {
		t.Fatalf("repeat PostNoticeBatch: got %d, %v; want 0, nil", n, err)
	}
	if msgs, unread, _ := s.Messages(ctx, "acc_n00", 10); len(msgs) != 1 || unread != 1 || msgs[0].NoticeRun != "ntc_1" {
		t.Fatalf("acc_n00 inbox: got %+v, want one unread notice of ntc_1", msgs)
	}

	// Claims never overlap, so no email is handed out twice.
	seen := map[string]bool{}
	first, err := s.ClaimNoticeEmails(ctx, "ntc_1", 4)
	must(t, "ClaimNoticeEmails", err)
	second, err := s.ClaimNoticeEmails(ctx, "ntc_1", 4)
	must(t, "ClaimNoticeEmails", err)
	third, _ := s.ClaimNoticeEmails(ctx, "ntc_1", 4)
	for _, r := range append(append(first, second...), third...) {
		if seen[r.Account.ID] {
			t.Fatalf("account %s claimed twice", r.Account.ID)
		}
		seen[r.Account.ID] = true
		if string(r.Account.EmailSealed) != "sealed-email-"+r.Account.ID {
			t.Fatalf("claimed account %s: got sealed email %q, want the account's", r.Account.ID, r.Account.EmailSealed)
		}
	}
	if len(first) != 4 || len(second) != 3 || len(third) != 0 {
		t.Fatalf("claims: got %d, %d, %d; want 4, 3, 0", len(first), len(second), len(third))
	}
	must(t, "SetEmailState sent", s.SetEmailState(ctx, []string{first[0].MessageID, first[1].MessageID}, "sent"))
	must(t, "SetEmailState failed", s.SetEmailState(ctx, []string{first[2].MessageID}, "failed"))
	must(t, "SetEmailState pending", s.SetEmailState(ctx, []string{first[3].MessageID}, "pending"))
	wantCode(t, "SetEmailState bogus", s.SetEmailState(ctx, []string{first[3].MessageID}, "claimed"), errs.Invalid)
	// Emails handed to the outbound queue are queued until their outcome
	// comes; an outcome may come first, and then stands.
	must(t, "SetEmailState sent before queued", s.SetEmailState(ctx, []string{second[1].MessageID}, "sent"))
	must(t, "SetEmailState queued", s.SetEmailState(ctx, []string{second[0].MessageID, second[1].MessageID}, "queued"))
	must(t, "SetEmailState queued after sent", s.SetEmailState(ctx, []string{first[0].MessageID}, "queued"))
	must(t, "SetEmailState pending after sent", s.SetEmailState(ctx, []string{first[1].MessageID}, "pending"))
	p, err := s.NoticeProgress(ctx, "ntc_1", store.Flags{})
	must(t, "NoticeProgress", err)
	want := store.NoticeProgress{Accounts: 7, Posted: 7, Pending: 1, Sent: 3, Failed: 1, Claimed: 1, Queued: 1}
	if p != want {
		t.Fatalf("NoticeProgress: got %+v, want %+v", p, want)
	}
	must(t, "SetEmailState failed from queued", s.SetEmailState(ctx, []string{second[0].MessageID}, "failed"))
	p, err = s.NoticeProgress(ctx, "ntc_1", store.Flags{})
	must(t, "NoticeProgress", err)
	want = store.NoticeProgress{Accounts: 7, Posted: 7, Pending: 1, Sent: 3, Failed: 2, Claimed: 1}
	if p != want {
		t.Fatalf("NoticeProgress: got %+v, want %+v", p, want)
	}
	if runs, _ := s.NoticeRuns(ctx, true); len(runs) != 1 || runs[0].ID != "ntc_1" || !runs[0].Email {
		t.Fatalf("unfinished runs: got %+v, want ntc_1", runs)
	}
	must(t, "FinishNoticeRun", s.FinishNoticeRun(ctx, "ntc_1", t0().Add(time.Hour)))
	if runs, _ := s.NoticeRuns(ctx, true); len(runs) != 0 {
		t.Fatalf("unfinished runs after finish: got %d, want 0", len(runs))
	}
	r, err := s.NoticeRun(ctx, "ntc_1")
	must(t, "NoticeRun", err)
	if r.FinishedAt == nil || !r.FinishedAt.Equal(t0().Add(time.Hour)) {
		t.Fatalf("FinishedAt: got %v, want %v", r.FinishedAt, t0().Add(time.Hour))
	}
	_, err = s.NoticeRun(ctx, "ntc_nope")
	wantCode(t, "NoticeRun unknown", err, errs.NotFound)
}

func testPolicyDocuments(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acc_p1")
	for i, tc := range []struct {
		id, kind string
		material bool
		want     int
	}{
		{"pol_1", store.PolicyPrivacy, false, 1},
		{"pol_2", store.PolicyTerms, false, 1},
		{"pol_3", store.PolicyPrivacy, true, 2},
	} {
		d := &store.PolicyDocument{ID: tc.id, Kind: tc.kind, Material: tc.material, Body: "text " + tc.id,
			PublishedAt: t0().Add(time.Duration(i) * time.Hour), PublishedBy: "system"}
		var run *store.NoticeRun
		if tc.material {
			run = &store.NoticeRun{ID: "ntc_" + tc.id, Kind: "policy-change", DocumentID: tc.id, Subject: "s", Body: "b", Email: true, CreatedAt: t0()}
		}
		must(t, "PublishPolicy "+tc.id, s.PublishPolicy(ctx, d, run))
		if d.Version != tc.want {
			t.Fatalf("PublishPolicy %s: got version %d, want %d", tc.id, d.Version, tc.want)
		}
	}
	if _, err := s.NoticeRun(ctx, "ntc_pol_3"); err != nil {
		t.Fatalf("material publication: notice run not created: %v", err)
	}
	err := s.PublishPolicy(ctx, &store.PolicyDocument{ID: "pol_4", Kind: "cookies", Body: "x", PublishedBy: "system"}, nil)
	wantCode(t, "PublishPolicy bad kind", err, errs.Invalid)

	docs, err := s.PolicyDocuments(ctx, store.PolicyPrivacy)
	must(t, "PolicyDocuments", err)
	if len(docs) != 2 || docs[0].ID != "pol_3" || !docs[0].Material || docs[0].Body != "text pol_3" {
		t.Fatalf("PolicyDocuments(privacy): got %+v, want pol_3 then pol_1", docs)
	}
	if all, _ := s.PolicyDocuments(ctx, ""); len(all) != 3 {
		t.Fatalf("PolicyDocuments(all): got %d, want 3", len(all))
	}
	_, err = s.PolicyDocument(ctx, "pol_nope")
	wantCode(t, "PolicyDocument unknown", err, errs.NotFound)

	must(t, "AcceptPolicy", s.AcceptPolicy(ctx, "acc_p1", "pol_3", t0().Add(time.Hour)))
	must(t, "AcceptPolicy again", s.AcceptPolicy(ctx, "acc_p1", "pol_3", t0().Add(2*time.Hour)))
	wantCode(t, "AcceptPolicy unknown doc", s.AcceptPolicy(ctx, "acc_p1", "pol_nope", t0()), errs.NotFound)
	wantCode(t, "AcceptPolicy unknown account", s.AcceptPolicy(ctx, "acc_nope", "pol_3", t0()), errs.NotFound)
	acc, err := s.Acceptances(ctx, "acc_p1")
	must(t, "Acceptances", err)
	if len(acc) != 1 || acc[0].DocumentID != "pol_3" || acc[0].Kind != store.PolicyPrivacy || acc[0].Version != 2 ||
		!acc[0].AcceptedAt.Equal(t0().Add(time.Hour)) {
		t.Fatalf("Acceptances: got %+v, want pol_3 v2 accepted at %v (first time kept)", acc, t0().Add(time.Hour))
	}
}

// testRetention checks every sweep target: only records past their
// cutoff go, held accounts' records stay, and batches are bounded.
func testRetention(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Closure times are set by the database clock, so the reference time
	// here is the wall clock.
	now := time.Now().UTC().Truncate(time.Minute).Add(31 * 24 * time.Hour)
	day := 24 * time.Hour
	mkAccount(t, s, "acc_ra") // active
	mkAccount(t, s, "acc_rh") // active, held
	for _, id := range []string{"acc_rc", "acc_rch"} {
		a := newAccount(id)
		a.Status = store.StatusClosed
		must(t, "CreateAccount "+id, s.CreateAccount(ctx, a))
	}
	for _, id := range []string{"acc_rh", "acc_rch"} {
		must(t, "CreateHold", s.CreateHold(ctx, &store.Hold{ID: "hold_" + id, AccountID: id, Reason: "case 1", CreatedBy: "stf_1", CreatedAt: t0()}))
	}
	// A released hold does not protect.
	must(t, "CreateHold", s.CreateHold(ctx, &store.Hold{ID: "hold_rel", AccountID: "acc_ra", Reason: "old", CreatedBy: "stf_1", CreatedAt: t0()}))
	if _, err := s.ReleaseHold(ctx, "hold_rel", "stf_1", t0()); err != nil {
		t.Fatalf("ReleaseHold: %v", err)
	}

	token := func(acc string, n int, expires time.Time) {
		must(t, "CreateToken", s.CreateToken(ctx, &store.Token{Hash: fmt.Appendf(nil, "tok-%s-%d", acc, n), AccountID: acc, CreatedAt: t0(), ExpiresAt: expires}))
		// An account keeps only its newest reset token, so each due one
		// of acc_ra belongs to an active account of its own.
		racc := acc
		if acc == "acc_ra" && n < 100 {
			racc = fmt.Sprintf("acc_ra%d", n)
			mkAccount(t, s, racc)
		}
		must(t, "CreateResetToken", s.CreateResetToken(ctx, &store.ResetToken{Hash: fmt.Appendf(nil, "rst-%s-%d", acc, n), AccountID: racc, CreatedAt: t0(), ExpiresAt: expires}))
	}
	for n := range 7 {
		token("acc_ra", n, now.Add(-31*day)) // due
	}
	token("acc_ra", 100, now.Add(-29*day)) // not yet
	token("acc_rh", 0, now.Add(-31*day))   // held

	code := func(acc string, ch store.Channel, purpose string, expires time.Time, used *time.Time) {
		must(t, "PutCode", s.PutCode(ctx, &store.Code{AccountID: acc, Channel: ch, Purpose: purpose, Hash: []byte("h"), ExpiresAt: expires, CreatedAt: t0()}))
		if used != nil {
			must(t, "UseCode", s.UseCode(ctx, acc, ch, purpose, *used))
		}
	}
	ago := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	code("acc_ra", store.Email, "a", now.Add(-3*day), ago(2*day))     // used 2 days ago: due
	code("acc_ra", store.Email, "b", now.Add(day), ago(12*time.Hour)) // used 12 h ago: not yet
	code("acc_ra", store.Mobile, "c", now.Add(-2*day), nil)           // expired unused 2 days ago: due
	code("acc_ra", store.Mobile, "d", now.Add(-12*time.Hour), nil)    // expired 12 h ago: not yet
	code("acc_rh", store.Email, "a", now.Add(-3*day), ago(2*day))     // held

	mkDevice(t, s, "acc_ra", "dev_ra", 901)
	mkDevice(t, s, "acc_rh", "dev_rh", 902)
	iv := func(dev string, start time.Time, end *time.Time) store.Interval {
		return store.Interval{DeviceID: dev, Start: start, End: end}
	}
	_, err := s.RecordIntervals(ctx, "eu", []store.Interval{
		iv("dev_ra", now.Add(-92*day), ago(91*day)), // due
		iv("dev_ra", now.Add(-90*day), ago(89*day)), // ended 89 days ago: not yet
		iv("dev_ra", now.Add(-100*day), nil),        // still open: kept
		iv("dev_rh", now.Add(-92*day), ago(91*day)), // held
	})
	must(t, "RecordIntervals", err)

	for _, acc := range []string{"acc_ra", "acc_rc", "acc_rch"} {
		must(t, "PostMessage", s.PostMessage(ctx, &store.Message{ID: "msg_" + acc, AccountID: acc, Kind: "k", Sealed: []byte("s"), CreatedAt: t0()}))
	}

	for i, subj := range []string{"acc_ra", "acc_rh", "acc_ra"} {
		_, err := s.AppendAudit(ctx, auditchain.Entry{At: now.Add(-7 * 365 * day).Add(time.Duration(i) * time.Second),
			Actor: "stf_1", Role: "admin", Action: "account.view", Subject: subj, Detail: "d"})
		must(t, "AppendAudit", err)
	}
	_, err = s.AppendAudit(ctx, auditchain.Entry{At: now.Add(-day), Actor: "stf_1", Role: "admin", Action: "account.view", Subject: "acc_ra", Detail: "d"})
	must(t, "AppendAudit", err)

	completed := now.Add(-4 * 365 * day)
	recent := now.Add(-365 * day)
	for _, r := range []struct {
		id, acc string
		done    *time.Time
	}{{"req_old", "acc_ra", &completed}, {"req_new", "acc_ra", &recent}, {"req_open", "acc_ra", nil}, {"req_held", "acc_rh", &completed}} {
		status := store.RequestCompleted
		if r.done == nil {
			status = store.RequestPending
		}
		must(t, "CreatePrivacyRequest", s.CreatePrivacyRequest(ctx, &store.PrivacyRequest{ID: r.id, AccountID: r.acc, Type: store.RequestAccess, Sealed: []byte("s"),
			Status: status, ReceivedAt: now.Add(-5 * 365 * day), DueAt: now.Add(-5 * 365 * day), CompletedAt: r.done}))
	}

	cutoff := func(days int) time.Time { return now.Add(-time.Duration(days) * day) }
	for _, tc := range []struct {
		target     string
		days       int
		limit      int
		wantDelete []int64 // per batch
		wantHeld   int64
	}{
		{store.SweepTokens, 30, 3, []int64{3, 3, 1, 0}, 1},
		{store.SweepResetTokens, 30, 5, []int64{5, 2, 0}, 1},
		{store.SweepCodes, 1, 10, []int64{2, 0}, 1},
		{store.SweepSessions, 90, 10, []int64{1, 0}, 1},
		{store.SweepInbox, 30, 10, []int64{1, 0}, 1},
		{store.SweepClosedDevices, 30, 10, []int64{0}, 0},
		{store.SweepClosedAccounts, 30, 10, []int64{1, 0}, 1},
		{store.SweepRequests, 3 * 365, 10, []int64{1, 0}, 1},
		{store.SweepAudit, 6 * 365, 10, []int64{1, 0}, 1},
		// Peer changes are written with the store's clock (now, in real
		// time), 31 days before this test's reference time.
		{store.SweepPeerChanges, 30, 10, []int64{1, 0}, 1},
	} {
		t.Run(tc.target, func(t *testing.T) {
			var got []int64
			for range tc.wantDelete {
				n, err := s.SweepBatch(ctx, tc.target, cutoff(tc.days), now, tc.limit)
				must(t, "SweepBatch", err)
				got = append(got, n)
			}
			if !slices.Equal(got, tc.wantDelete) {
				t.Fatalf("SweepBatch per batch: got %v, want %v", got, tc.wantDelete)
			}
			held, err := s.SweepHeld(ctx, tc.target, cutoff(tc.days), now)
			must(t, "SweepHeld", err)
			if held != tc.wantHeld {
				t.Fatalf("SweepHeld: got %d, want %d", held, tc.wantHeld)
			}
		})
	}
	// What must remain does.
	if _, err := s.TokenByHash(ctx, []byte("tok-acc_ra-100"), now.Add(-30*day)); err != nil {
		t.Errorf("the not-yet-due token was deleted: %v", err)
	}
	if _, err := s.Account(ctx, "acc_rch"); err != nil {
		t.Errorf("the held closed account was purged: %v", err)
	}
	_, err = s.Account(ctx, "acc_rc")
	wantCode(t, "closed account purged", err, errs.NotFound)
	if got, _ := s.Usage(ctx, "acc_ra", now.Add(-200*day), 10); len(got) != 2 {
		t.Errorf("acc_ra sessions left: got %d, want 2 (recent and open)", len(got))
	}
	if got, _ := s.Usage(ctx, "acc_rh", now.Add(-200*day), 10); len(got) != 1 {
		t.Errorf("held sessions left: got %d, want 1", len(got))
	}
	if msgs, _, _ := s.Messages(ctx, "acc_ra", 10); len(msgs) != 1 {
		t.Errorf("active account's inbox: got %d, want 1", len(msgs))
	}
	if msgs, _, _ := s.Messages(ctx, "acc_rch", 10); len(msgs) != 1 {
		t.Errorf("held closed account's inbox: got %d, want 1", len(msgs))
	}
	entries, _ := s.AuditEntries(ctx, 0, 10)
	if len(entries) != 3 || entries[0].Seq != 2 || auditchain.VerifyFrom(entries[0].PrevHash, entries) != nil {
		t.Errorf("audit after sweep: got %d entries from seq %d, want 3 from seq 2 forming a chain", len(entries), entries[0].Seq)
	}
	for _, id := range []string{"req_new", "req_open", "req_held"} {
		if _, err := s.PrivacyRequest(ctx, id); err != nil {
			t.Errorf("request %s deleted: %v", id, err)
		}
	}
	// Targets without rows here still run on both engines.
	must(t, "CreateStaff", s.CreateStaff(ctx, &store.Staff{ID: "stf_r", Email: "r@example.org", Role: "admin", PasswordHash: "x", CreatedAt: t0()}))
	must(t, "CreateStaffToken", s.CreateStaffToken(ctx, []byte("st-old"), "stf_r", t0(), now.Add(-31*day)))
	must(t, "CreateStaffToken", s.CreateStaffToken(ctx, []byte("st-new"), "stf_r", t0(), now.Add(day)))
	for _, tc := range []struct {
		target string
		want   int64
	}{{store.SweepStaffTokens, 1}, {store.SweepExportTokens, 0}, {store.SweepPendingContacts, 0}} {
		n, err := s.SweepBatch(ctx, tc.target, now.Add(-30*day), now, 10)
		must(t, "SweepBatch "+tc.target, err)
		if n != tc.want {
			t.Errorf("SweepBatch %s: got %d, want %d", tc.target, n, tc.want)
		}
		_, err = s.SweepHeld(ctx, tc.target, now.Add(-30*day), now)
		must(t, "SweepHeld "+tc.target, err)
	}
	_, err = s.SweepBatch(ctx, "secrets", now, now, 10)
	wantCode(t, "unknown target", err, errs.Invalid)
	_, err = s.SweepBatch(ctx, store.SweepTokens, now, now, 0)
	wantCode(t, "limit 0", err, errs.Invalid)

	// Run records: the newest is returned.
	_, err = s.LastRetentionRun(ctx)
	wantCode(t, "LastRetentionRun none", err, errs.NotFound)
	for i := range 2 {
		must(t, "SaveRetentionRun", s.SaveRetentionRun(ctx, &store.RetentionRun{ID: fmt.Sprintf("ret_%d", i), Cause: "manual",
			StartedAt: t0().Add(time.Duration(i) * time.Hour), FinishedAt: t0().Add(time.Duration(i) * time.Hour),
			Counts: []store.SweepCount{{Category: "usage.sessions", Target: store.SweepSessions, Days: 90, Deleted: int64(i)}}}))
	}
	last, err := s.LastRetentionRun(ctx)
	must(t, "LastRetentionRun", err)
	if last.ID != "ret_1" || len(last.Counts) != 1 || last.Counts[0].Deleted != 1 {
		t.Fatalf("LastRetentionRun: got %+v, want ret_1 with 1 deleted", last)
	}
}

// testAcceptanceRetention checks that a closed account's policy
// acceptances outlive the account's row without holding it: the row goes
// at the end of the account's grace period, the acceptances (which carry
// the closing time) at the end of their own; an unverified account's
// acceptances go with it.
func testAcceptanceRetention(t *testing.T, s store.Store) {
	ctx := t.Context()
	day := 24 * time.Hour
	// Closure times come from the database clock: reason from real now.
	now := time.Now().UTC().Add(31 * day)
	must(t, "PublishPolicy", s.PublishPolicy(ctx, &store.PolicyDocument{ID: "pol_ar", Kind: "privacy", Body: "text", PublishedBy: "system", PublishedAt: t0()}, nil))
	// Accepted after closure (created closed), and accepted before
	// closure (closed by an erasure).
	a := newAccount("acc_ar")
	a.Status = store.StatusClosed
	must(t, "CreateAccount", s.CreateAccount(ctx, a))
	must(t, "AcceptPolicy", s.AcceptPolicy(ctx, "acc_ar", "pol_ar", t0()))
	erasureFixture(t, s, "acc_er", "prq_er", 901)
	must(t, "AcceptPolicy", s.AcceptPolicy(ctx, "acc_er", "pol_ar", t0()))
	_, err := s.EraseAccount(ctx, store.Erasure{RequestID: "prq_er", AccountID: "acc_er", At: t0(), Outcome: "erased"})
	must(t, "EraseAccount", err)
	// An open, verified account and an unverified one.
	mkAccount(t, s, "acc_live")
	must(t, "SetVerified", s.SetVerified(ctx, "acc_live", store.Email))
	must(t, "AcceptPolicy", s.AcceptPolicy(ctx, "acc_live", "pol_ar", t0()))
	mkAccount(t, s, "acc_unv")
	must(t, "AcceptPolicy", s.AcceptPolicy(ctx, "acc_unv", "pol_ar", t0()))

	count := func(id string) int {
		t.Helper()
		got, err := s.Acceptances(ctx, id)
		must(t, "Acceptances", err)
		return len(got)
	}
	// 31 days after closure: past the 30-day account grace, inside the
	// 3-year acceptance period. The closed rows go, acceptances stay.
	if n, err := s.SweepBatch(ctx, store.SweepClosedAccounts, now.Add(-30*day), now, 10); err != nil || n != 2 {
		t.Fatalf("closed accounts past their grace: got %d purged, %v; want 2 (acceptances hold no row)", n, err)
	}
	if n, err := s.SweepBatch(ctx, store.SweepAcceptances, now.Add(-3*365*day), now, 10); err != nil || n != 0 {
		t.Fatalf("acceptances within 3 years: got %d deleted, %v; want 0", n, err)
	}
	for _, id := range []string{"acc_ar", "acc_er", "acc_live", "acc_unv"} {
		if count(id) != 1 {
			t.Fatalf("acceptances of %s after the account purge: got %d, want 1", id, count(id))
		}
	}
	// The unverified account goes with its acceptances; the verified one
	// stays.
	if n, err := s.SweepBatch(ctx, store.SweepUnverified, now.Add(-7*day), now, 10); err != nil || n != 1 {
		t.Fatalf("unverified accounts: got %d purged, %v; want 1", n, err)
	}
	if _, err := s.Account(ctx, "acc_unv"); errs.CodeOf(err) != errs.NotFound || count("acc_unv") != 0 {
		t.Fatalf("the unverified account or its acceptances survived (%v, %d)", err, count("acc_unv"))
	}
	// Once the acceptance period has passed (simulated with a later
	// cutoff), the closed accounts' acceptances go; the open account's stay.
	if n, err := s.SweepBatch(ctx, store.SweepAcceptances, now.Add(-30*day), now, 10); err != nil || n != 2 {
		t.Fatalf("acceptances past their period: got %d deleted, %v; want 2", n, err)
	}
	if count("acc_ar") != 0 || count("acc_er") != 0 || count("acc_live") != 1 {
		t.Fatalf("acceptances after their sweep: %d, %d, %d; want 0, 0, 1", count("acc_ar"), count("acc_er"), count("acc_live"))
	}
	if _, err := s.Account(ctx, "acc_live"); err != nil {
		t.Fatalf("the verified open account was swept: %v", err)
	}
}
