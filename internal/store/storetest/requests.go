package storetest

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// testOutsideRequests: a request recorded by staff keeps its channel and
// identity check; one without an account needs both; the mobile blind
// index finds an account as the email one does.
func testOutsideRequests(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkAccount(t, s, "acc_o1")
	got, err := s.AccountByMobileIndex(ctx, a.MobileIndex)
	must(t, "AccountByMobileIndex", err)
	if got.ID != "acc_o1" {
		t.Fatalf("AccountByMobileIndex: got %q, want acc_o1", got.ID)
	}
	for _, idx := range [][]byte{nil, []byte("mobile-index-none"), a.EmailIndex} {
		_, err := s.AccountByMobileIndex(ctx, idx)
		wantCode(t, "AccountByMobileIndex "+string(idx), err, errs.NotFound)
	}

	check := &store.IdentityCheck{By: "stf_1", Method: "callback", At: t0().Add(time.Minute)}
	for _, tc := range []struct {
		name string
		r    store.PrivacyRequest
		want errs.Code
	}{
		{"app without account", store.PrivacyRequest{ID: "prq_o9", Type: "access", Status: "verified"}, errs.Invalid},
		{"post without check", store.PrivacyRequest{ID: "prq_o9", Type: "access", Status: "verified", Channel: store.ChannelPost}, errs.Invalid},
		{"check without method", store.PrivacyRequest{ID: "prq_o9", Type: "access", Status: "verified", Channel: store.ChannelPost,
			Check: &store.IdentityCheck{By: "stf_1", At: t0()}}, errs.Invalid},
		{"account's note in plaintext", store.PrivacyRequest{ID: "prq_o9", AccountID: "acc_o1", Type: "access", Status: "pending",
			Channel: store.ChannelPost, Sealed: []byte("s"), Details: "letter ref 8"}, errs.Invalid},
		{"account's request unsealed", store.PrivacyRequest{ID: "prq_o9", AccountID: "acc_o1", Type: "access", Status: "pending",
			Channel: store.ChannelPost}, errs.Invalid},
		{"sealed without account", store.PrivacyRequest{ID: "prq_o9", Type: "access", Status: "verified", Channel: store.ChannelPost,
			Check: check, Sealed: []byte("s")}, errs.Invalid},
	} {
		wantCode(t, tc.name, s.CreatePrivacyRequest(ctx, &tc.r), tc.want)
	}
	noAccount := &store.PrivacyRequest{ID: "prq_o1", Type: store.RequestAccess, Status: store.RequestVerified,
		Channel: store.ChannelPost, Check: check, Details: "letter ref 7", ReceivedAt: t0(), DueAt: t0().AddDate(0, 1, 0),
		VerifiedAt: &check.At}
	must(t, "CreatePrivacyRequest without account", s.CreatePrivacyRequest(ctx, noAccount))
	// It has no key to seal its note under: the sealing job leaves it.
	plain, err := s.PlainTexts(ctx, store.PlainRequests, "", 100)
	must(t, "PlainTexts", err)
	for _, p := range plain {
		if p.ID == noAccount.ID {
			t.Fatalf("PlainTexts lists the request without an account: %+v", p)
		}
	}
	withAccount := &store.PrivacyRequest{ID: "prq_o2", AccountID: "acc_o1", Type: store.RequestErasure,
		Status: store.RequestPending, Channel: store.ChannelPhone, Sealed: []byte("sealed note"), ReceivedAt: t0(), DueAt: t0().AddDate(0, 1, 0)}
	must(t, "CreatePrivacyRequest by phone", s.CreatePrivacyRequest(ctx, withAccount))
	app := mkRequest(t, s, "prq_o3", "acc_o1", store.RequestAccess, store.RequestPending, 0)

	r, err := s.PrivacyRequest(ctx, "prq_o1")
	must(t, "PrivacyRequest", err)
	if r.AccountID != "" || r.Channel != store.ChannelPost || r.Check == nil || *r.Check != *check || r.Details != "letter ref 7" {
		t.Fatalf("no-account request: got %+v (check %+v), want channel post and the check", r, r.Check)
	}
	for id, want := range map[string]string{"prq_o2": store.ChannelPhone, app.ID: store.ChannelApp} {
		r, err := s.PrivacyRequest(ctx, id)
		must(t, "PrivacyRequest "+id, err)
		if r.Channel != want || r.Check != nil {
			t.Errorf("%s: got channel %q, check %+v; want %q and none", id, r.Channel, r.Check, want)
		}
	}
	// The channel and check survive an update; overdue lists include the
	// requests from outside the app.
	r, err = s.UpdatePrivacyRequest(ctx, "prq_o1", func(r *store.PrivacyRequest) error {
		r.Channel, r.Check = store.ChannelApp, nil
		r.Outcome = "answered"
		return nil
	})
	must(t, "UpdatePrivacyRequest", err)
	if r.Channel != store.ChannelPost || r.Check == nil || r.Outcome != "answered" {
		t.Fatalf("after update: got %+v", r)
	}
	late := t0().AddDate(0, 2, 0)
	rs, err := s.PrivacyRequests(ctx, store.PrivacyFilter{OverdueAt: &late})
	must(t, "PrivacyRequests overdue", err)
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"prq_o1", "prq_o2", "prq_o3"}) {
		t.Fatalf("overdue: got %v, want all three", ids)
	}
	if n, err := s.CountOverduePrivacyRequests(ctx, late); err != nil || n != 3 {
		t.Fatalf("CountOverduePrivacyRequests: got %d, %v; want 3", n, err)
	}
}

// testProcessorTransfers: transfers are recorded per account, processor
// and category, with the first and last time; erasure deletes them, after
// the request's recipients were copied.
func testProcessorTransfers(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acc_t1")
	mkAccount(t, s, "acc_t2")
	must(t, "RecordTransfer", s.RecordTransfer(ctx, "acc_t1", "SMTP relay", []string{"account.email", "auth.codes"}, t0()))
	must(t, "RecordTransfer again", s.RecordTransfer(ctx, "acc_t1", "SMTP relay", []string{"account.email", "inbox.messages"}, t0().Add(time.Hour)))
	must(t, "RecordTransfer sms", s.RecordTransfer(ctx, "acc_t1", "SMS gateway", []string{"account.mobile"}, t0().Add(time.Minute)))
	must(t, "RecordTransfer other", s.RecordTransfer(ctx, "acc_t2", "SMTP relay", []string{"account.email"}, t0()))
	wantCode(t, "RecordTransfer unknown account", s.RecordTransfer(ctx, "acc_none", "SMTP relay", []string{"account.email"}, t0()), errs.NotFound)
	wantCode(t, "RecordTransfer no processor", s.RecordTransfer(ctx, "acc_t1", "", []string{"account.email"}, t0()), errs.Invalid)

	got, err := s.ProcessorTransfers(ctx, "acc_t1")
	must(t, "ProcessorTransfers", err)
	h := t0().Add(time.Hour)
	want := []store.ProcessorTransfer{
		{AccountID: "acc_t1", Processor: "SMS gateway", Category: "account.mobile", FirstAt: t0().Add(time.Minute), LastAt: t0().Add(time.Minute)},
		{AccountID: "acc_t1", Processor: "SMTP relay", Category: "account.email", FirstAt: t0(), LastAt: h},
		{AccountID: "acc_t1", Processor: "SMTP relay", Category: "auth.codes", FirstAt: t0(), LastAt: t0()},
		{AccountID: "acc_t1", Processor: "SMTP relay", Category: "inbox.messages", FirstAt: h, LastAt: h},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ProcessorTransfers:\n got %+v\nwant %+v", got, want)
	}

	// Erasure removes them; the other account's stay.
	erasureFixture(t, s, "acc_t3", "prq_t3", 731)
	must(t, "RecordTransfer erased", s.RecordTransfer(ctx, "acc_t3", "SMTP relay", []string{"account.email"}, t0()))
	_, err = s.EraseAccount(ctx, store.Erasure{RequestID: "prq_t3", AccountID: "acc_t3", At: t0().Add(time.Hour), Outcome: "erased"})
	must(t, "EraseAccount", err)
	if got, _ := s.ProcessorTransfers(ctx, "acc_t3"); len(got) != 0 {
		t.Fatalf("transfers after erasure: got %+v, want none", got)
	}
	if got, _ := s.ProcessorTransfers(ctx, "acc_t2"); len(got) != 1 {
		t.Fatalf("other account's transfers: got %+v, want 1", got)
	}
}

// testRequestRecipients: merging keeps a recipient's status and widens its
// categories and times; noting records the communication.
func testRequestRecipients(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acc_r1")
	mkRequest(t, s, "prq_r1", "acc_r1", store.RequestRectification, store.RequestVerified, 0)
	wantCode(t, "merge unknown request", s.MergeRequestRecipients(ctx, "prq_none",
		[]store.RequestRecipient{{Processor: "SMTP relay", Categories: []string{"account.email"}, FirstAt: t0(), LastAt: t0()}}), errs.NotFound)
	must(t, "MergeRequestRecipients", s.MergeRequestRecipients(ctx, "prq_r1", []store.RequestRecipient{
		{Processor: "SMTP relay", Categories: []string{"account.email"}, FirstAt: t0().Add(time.Hour), LastAt: t0().Add(time.Hour)},
		{Processor: "SMS gateway", Categories: []string{"account.mobile", "auth.codes"}, FirstAt: t0(), LastAt: t0()},
	}))
	at := t0().Add(2 * time.Hour)
	wantCode(t, "note sealed and plain", s.NoteRequestRecipient(ctx, "prq_r1", "SMS gateway", store.RecipientImpossible,
		"keeps no copy after delivery", []byte("sealed note"), "stf_9", at), errs.Invalid)
	must(t, "NoteRequestRecipient", s.NoteRequestRecipient(ctx, "prq_r1", "SMS gateway", store.RecipientImpossible,
		"", []byte("sealed note"), "stf_9", at))
	wantCode(t, "note unknown recipient", s.NoteRequestRecipient(ctx, "prq_r1", "Courier", store.RecipientTold, "", nil, "stf_9", at), errs.NotFound)
	// A second merge (at completion) widens the SMTP entry and keeps the
	// SMS entry's status.
	must(t, "MergeRequestRecipients again", s.MergeRequestRecipients(ctx, "prq_r1", []store.RequestRecipient{
		{Processor: "SMTP relay", Categories: []string{"auth.codes", "account.email"}, FirstAt: t0(), LastAt: t0().Add(3 * time.Hour)},
		{Processor: "SMS gateway", Categories: []string{"account.mobile"}, FirstAt: t0(), LastAt: t0().Add(time.Minute)},
	}))
	got, err := s.RequestRecipients(ctx, "prq_r1")
	must(t, "RequestRecipients", err)
	want := []store.RequestRecipient{
		{RequestID: "prq_r1", Processor: "SMS gateway", Categories: []string{"account.mobile", "auth.codes"}, FirstAt: t0(),
			LastAt: t0().Add(time.Minute), Status: store.RecipientImpossible, NotedAt: &at, NotedBy: "stf_9", NoteSealed: []byte("sealed note")},
		{RequestID: "prq_r1", Processor: "SMTP relay", Categories: []string{"account.email", "auth.codes"}, FirstAt: t0(),
			LastAt: t0().Add(3 * time.Hour), Status: store.RecipientPending},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("RequestRecipients:\n got %+v\nwant %+v", got, want)
	}
	if got, err := s.RequestRecipients(ctx, "prq_none"); err != nil || len(got) != 0 {
		t.Fatalf("recipients of an unknown request: got %+v, %v", got, err)
	}
}

// testBreaches: the register keeps a breach's facts; updates go through
// one transaction; unnotified breaches are counted by detection time,
// status, notification and risk.
func testBreaches(t *testing.T, s store.Store) {
	ctx := t.Context()
	mk := func(id string, detected time.Time) *store.Breach {
		b := &store.Breach{ID: id, DetectedAt: detected, Nature: "laptop stolen", Status: store.BreachOpen,
			RecordedBy: "stf_1", RecordedAt: detected, UpdatedAt: detected}
		must(t, "CreateBreach "+id, s.CreateBreach(ctx, b))
		return b
	}
	b1 := mk("brc_1", t0())
	mk("brc_2", t0().Add(time.Hour))
	mk("brc_3", t0().Add(2*time.Hour))
	wantCode(t, "CreateBreach duplicate", s.CreateBreach(ctx, b1), errs.Conflict)
	wantCode(t, "CreateBreach no nature", s.CreateBreach(ctx, &store.Breach{ID: "brc_9", Status: store.BreachOpen, RecordedBy: "stf_1"}), errs.Invalid)

	got, err := s.Breach(ctx, "brc_1")
	must(t, "Breach", err)
	if !reflect.DeepEqual(got, &store.Breach{ID: "brc_1", DetectedAt: t0(), Nature: "laptop stolen", Categories: []string{},
		Status: store.BreachOpen, RecordedBy: "stf_1", RecordedAt: t0(), UpdatedAt: t0()}) {
		t.Fatalf("Breach: got %+v", got)
	}
	_, err = s.Breach(ctx, "brc_none")
	wantCode(t, "Breach unknown", err, errs.NotFound)

	notified := t0().Add(30 * time.Hour)
	people, records := int64(120), int64(340)
	up, err := s.UpdateBreach(ctx, "brc_1", func(b *store.Breach) error {
		b.Categories = []string{"account.email", "devices"}
		b.People, b.Records = &people, &records
		b.Consequences, b.MeasuresTaken, b.MeasuresProposed = "phishing", "disk was encrypted", "rotate keys"
		b.Risk, b.AuthorityNotifiedAt, b.AuthorityReference = "high", &notified, "DPA-2025-17"
		b.RecordedBy = "stf_other" // ignored
		b.UpdatedAt = notified
		return nil
	})
	must(t, "UpdateBreach", err)
	if !slices.Equal(up.Categories, []string{"account.email", "devices"}) || *up.People != 120 || *up.Records != 340 ||
		up.MeasuresProposed != "rotate keys" || up.Risk != "high" || !up.AuthorityNotifiedAt.Equal(notified) ||
		up.AuthorityReference != "DPA-2025-17" || up.RecordedBy != "stf_1" || !up.UpdatedAt.Equal(notified) {
		t.Fatalf("after UpdateBreach: got %+v", up)
	}
	_, err = s.UpdateBreach(ctx, "brc_2", func(b *store.Breach) error { return errs.E(errs.Conflict, "no") })
	wantCode(t, "UpdateBreach refused", err, errs.Conflict)
	_, err = s.UpdateBreach(ctx, "brc_none", func(*store.Breach) error { return nil })
	wantCode(t, "UpdateBreach unknown", err, errs.NotFound)

	list, err := s.Breaches(ctx)
	must(t, "Breaches", err)
	if len(list) != 3 || list[0].ID != "brc_3" || list[2].ID != "brc_1" {
		t.Fatalf("Breaches: got %+v, want newest detected first", list)
	}

	// brc_1 is notified; brc_2 is assessed unlikely; brc_3 is open.
	_, err = s.UpdateBreach(ctx, "brc_2", func(b *store.Breach) error { b.Risk = "unlikely"; return nil })
	must(t, "UpdateBreach risk", err)
	for _, tc := range []struct {
		before time.Time
		want   int
	}{{t0(), 0}, {t0().Add(3 * time.Hour), 1}} {
		if n, err := s.CountUnnotifiedBreaches(ctx, tc.before, "unlikely"); err != nil || n != tc.want {
			t.Errorf("CountUnnotifiedBreaches(%v): got %d, %v; want %d", tc.before, n, err, tc.want)
		}
	}
	closed := t0().Add(4 * time.Hour)
	_, err = s.UpdateBreach(ctx, "brc_3", func(b *store.Breach) error {
		b.Status, b.ClosedAt = store.BreachClosed, &closed
		return nil
	})
	must(t, "UpdateBreach close", err)
	if n, _ := s.CountUnnotifiedBreaches(ctx, t0().Add(3*time.Hour), "unlikely"); n != 0 {
		t.Errorf("CountUnnotifiedBreaches after closing: got %d, want 0", n)
	}
	// The sweeper deletes closed records after their retention.
	n, err := s.SweepBatch(ctx, store.SweepBreaches, closed, closed, 10)
	must(t, "SweepBatch breaches early", err)
	if n != 0 {
		t.Fatalf("SweepBatch before the cutoff: got %d, want 0", n)
	}
	n, err = s.SweepBatch(ctx, store.SweepBreaches, closed.Add(time.Second), closed, 10)
	must(t, "SweepBatch breaches", err)
	if n != 1 {
		t.Fatalf("SweepBatch: got %d, want 1", n)
	}
	if list, _ := s.Breaches(ctx); len(list) != 2 {
		t.Fatalf("after the sweep: %d breaches, want 2", len(list))
	}
}

// testListedNoticeRuns: a listed run posts to its accounts at once and to
// nobody else, refuses an account that is not active (and then leaves
// nothing), and reports its own size as its audience.
func testListedNoticeRuns(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"acc_l1", "acc_l2", "acc_l3"} {
		mkAccount(t, s, id)
	}
	closed := newAccount("acc_lclosed")
	closed.Status = store.StatusClosed
	must(t, "CreateAccount closed", s.CreateAccount(ctx, closed))

	mkRun := func(id string) *store.NoticeRun {
		return &store.NoticeRun{ID: id, Kind: "breach-notice", DocumentID: "brc_1", Subject: "A breach", Body: "Details",
			Email: true, CreatedAt: t0()}
	}
	for _, tc := range []struct {
		name     string
		accounts []string
		want     errs.Code
	}{
		{"closed account", []string{"acc_l1", "acc_lclosed"}, errs.NotFound},
		{"unknown account", []string{"acc_l1", "acc_none"}, errs.NotFound},
		{"repeated account", []string{"acc_l1", "acc_l1"}, errs.Invalid},
		{"nobody", nil, errs.Invalid},
	} {
		err := s.CreateListedNoticeRun(ctx, mkRun("ntc_bad"), tc.accounts, []string{"msg_x1", "msg_x2"})
		wantCode(t, tc.name, err, tc.want)
	}
	if _, err := s.NoticeRun(ctx, "ntc_bad"); !errs.Is(err, errs.NotFound) {
		t.Fatalf("a refused listed run was kept: %v", err)
	}
	if msgs, _, _ := s.Messages(ctx, "acc_l1", 10); len(msgs) != 0 {
		t.Fatalf("a refused listed run posted %d messages", len(msgs))
	}
	run := mkRun("ntc_l1")
	must(t, "CreateListedNoticeRun", s.CreateListedNoticeRun(ctx, run, []string{"acc_l1", "acc_l3"}, []string{"msg_l1", "msg_l3"}))
	wantCode(t, "CreateNoticeRun listed", s.CreateNoticeRun(ctx, &store.NoticeRun{ID: "ntc_l2", Kind: "x", Audience: store.AudienceListed}), errs.Invalid)
	r, err := s.NoticeRun(ctx, "ntc_l1")
	must(t, "NoticeRun", err)
	if r.Audience != store.AudienceListed || r.DocumentID != "brc_1" {
		t.Fatalf("listed run: got %+v", r)
	}
	if n, err := s.PostNoticeBatch(ctx, r, store.Flags{}, []string{"msg_p1", "msg_p2"}, t0(), 2); err != nil || n != 0 {
		t.Fatalf("PostNoticeBatch on a listed run: got %d, %v; want 0", n, err)
	}
	for acc, want := range map[string]int{"acc_l1": 1, "acc_l2": 0, "acc_l3": 1} {
		if msgs, _, _ := s.Messages(ctx, acc, 10); len(msgs) != want {
			t.Errorf("%s: %d messages, want %d", acc, len(msgs), want)
		}
	}
	p, err := s.NoticeProgress(ctx, "ntc_l1", store.Flags{Objected: true})
	must(t, "NoticeProgress", err)
	if p != (store.NoticeProgress{Accounts: 2, Posted: 2, Pending: 2}) {
		t.Fatalf("NoticeProgress: got %+v", p)
	}
	claimed, err := s.ClaimNoticeEmails(ctx, "ntc_l1", 10)
	must(t, "ClaimNoticeEmails", err)
	if len(claimed) != 2 || claimed[0].Account.ID != "acc_l1" || claimed[1].Account.ID != "acc_l3" {
		t.Fatalf("claimed: got %+v", claimed)
	}
}
