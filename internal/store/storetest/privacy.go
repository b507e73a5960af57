package storetest

import (
	"bytes"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// mkRequest creates a privacy request of typ for account, received at
// t0()+offset and due a month later.
func mkRequest(t *testing.T, s store.Store, id, account, typ, status string, offset time.Duration) *store.PrivacyRequest {
	t.Helper()
	r := &store.PrivacyRequest{ID: id, AccountID: account, Type: typ, Status: status, Sealed: []byte("sealed text of " + id),
		ReceivedAt: t0().Add(offset), DueAt: t0().Add(offset).AddDate(0, 1, 0)}
	must(t, "CreatePrivacyRequest "+id, s.CreatePrivacyRequest(t.Context(), r))
	return r
}

func testPrivacyRequests(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acc_p1")
	mkAccount(t, s, "acc_p2")
	mkRequest(t, s, "prq_1", "acc_p1", store.RequestAccess, store.RequestPending, 0)
	mkRequest(t, s, "prq_2", "acc_p1", store.RequestErasure, store.RequestPending, time.Hour)
	mkRequest(t, s, "prq_3", "acc_p2", store.RequestObjection, store.RequestCompleted, 0)

	for _, tc := range []struct {
		name string
		r    *store.PrivacyRequest
		want errs.Code
	}{
		{"duplicate", &store.PrivacyRequest{ID: "prq_1", AccountID: "acc_p1", Type: "access", Status: "x", Sealed: []byte("s")}, errs.Conflict},
		{"unknown account", &store.PrivacyRequest{ID: "prq_9", AccountID: "acc_none", Type: "access", Status: "x", Sealed: []byte("s")}, errs.NotFound},
		{"no type", &store.PrivacyRequest{ID: "prq_8", AccountID: "acc_p1", Status: "x", Sealed: []byte("s")}, errs.Invalid},
		{"not sealed", &store.PrivacyRequest{ID: "prq_7", AccountID: "acc_p1", Type: "access", Status: "x"}, errs.Invalid},
		{"plaintext details", &store.PrivacyRequest{ID: "prq_6", AccountID: "acc_p1", Type: "access", Status: "x",
			Sealed: []byte("s"), Details: "in plaintext"}, errs.Invalid},
	} {
		wantCode(t, tc.name, s.CreatePrivacyRequest(ctx, tc.r), tc.want)
	}

	got, err := s.PrivacyRequest(ctx, "prq_2")
	must(t, "PrivacyRequest", err)
	if got.AccountID != "acc_p1" || got.Type != store.RequestErasure || !got.ReceivedAt.Equal(t0().Add(time.Hour)) ||
		got.VerifiedAt != nil || string(got.Sealed) != "sealed text of prq_2" {
		t.Fatalf("got %+v, want the stored erasure request", got)
	}
	_, err = s.PrivacyRequest(ctx, "prq_none")
	wantCode(t, "PrivacyRequest unknown", err, errs.NotFound)

	late := t0().AddDate(0, 2, 0)
	for _, tc := range []struct {
		name string
		f    store.PrivacyFilter
		want []string
	}{
		{"all", store.PrivacyFilter{}, []string{"prq_2", "prq_1", "prq_3"}},
		{"account", store.PrivacyFilter{AccountID: "acc_p1"}, []string{"prq_2", "prq_1"}},
		{"type", store.PrivacyFilter{Type: store.RequestObjection}, []string{"prq_3"}},
		{"status", store.PrivacyFilter{Status: store.RequestPending}, []string{"prq_2", "prq_1"}},
		{"overdue later", store.PrivacyFilter{OverdueAt: &late}, []string{"prq_2", "prq_1"}},
		{"overdue now", store.PrivacyFilter{OverdueAt: ptr(t0())}, nil},
		{"limit", store.PrivacyFilter{Limit: 1}, []string{"prq_2"}},
	} {
		rs, err := s.PrivacyRequests(ctx, tc.f)
		must(t, tc.name, err)
		var ids []string
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, ids, tc.want)
		}
	}
	if n, err := s.CountOverduePrivacyRequests(ctx, late); err != nil || n != 2 {
		t.Fatalf("CountOverdue: got %d, %v, want 2", n, err)
	}

	// Update: the function's changes are written; its error aborts.
	verified := t0().Add(2 * time.Hour)
	u, err := s.UpdatePrivacyRequest(ctx, "prq_1", func(r *store.PrivacyRequest) error {
		r.Status, r.VerifiedAt, r.Outcome, r.Sealed = store.RequestCompleted, &verified, "export ready", []byte("resealed")
		return nil
	})
	must(t, "UpdatePrivacyRequest", err)
	if u.Status != store.RequestCompleted || u.VerifiedAt == nil || !u.VerifiedAt.Equal(verified) || u.Outcome != "export ready" ||
		string(u.Sealed) != "resealed" {
		t.Fatalf("updated: got %+v", u)
	}
	boom := errs.E(errs.Precondition, "no")
	_, err = s.UpdatePrivacyRequest(ctx, "prq_2", func(r *store.PrivacyRequest) error {
		r.Status = store.RequestDenied
		return boom
	})
	wantCode(t, "UpdatePrivacyRequest aborted", err, errs.Precondition)
	if r, _ := s.PrivacyRequest(ctx, "prq_2"); r.Status != store.RequestPending {
		t.Fatalf("after aborted update: got status %q, want %q", r.Status, store.RequestPending)
	}
	_, err = s.UpdatePrivacyRequest(ctx, "prq_none", func(*store.PrivacyRequest) error { return nil })
	wantCode(t, "UpdatePrivacyRequest unknown", err, errs.NotFound)
}

func ptr[T any](v T) *T { return &v }

// testExtensionNotice: an extension notice's delivery state is stored
// with its request, and the filter finds the notices due for a retry.
func testExtensionNotice(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acc_xn")
	mkRequest(t, s, "prq_xn1", "acc_xn", store.RequestAccess, store.RequestPending, 0)
	mkRequest(t, s, "prq_xn2", "acc_xn", store.RequestErasure, store.RequestPending, time.Hour)
	mkRequest(t, s, "prq_xn3", "acc_xn", store.RequestObjection, store.RequestPending, 2*time.Hour)
	retry1, retry2 := t0().Add(10*time.Minute), t0().Add(time.Hour)
	set := func(id string, d store.NoticeDelivery) {
		t.Helper()
		_, err := s.UpdatePrivacyRequest(ctx, id, func(r *store.PrivacyRequest) error {
			r.ExtensionNotice = d
			return nil
		})
		must(t, "UpdatePrivacyRequest "+id, err)
	}
	set("prq_xn1", store.NoticeDelivery{Attempts: 2, Error: "unavailable", RetryAt: &retry1})
	set("prq_xn2", store.NoticeDelivery{Attempts: 1, Error: "internal", RetryAt: &retry2})
	set("prq_xn3", store.NoticeDelivery{Attempts: 1, DeliveredAt: ptr(t0()), RetryAt: &retry1})
	got, err := s.PrivacyRequest(ctx, "prq_xn1")
	must(t, "PrivacyRequest", err)
	if d := got.ExtensionNotice; d.Attempts != 2 || d.Error != "unavailable" || d.DeliveredAt != nil ||
		d.RetryAt == nil || !d.RetryAt.Equal(retry1) {
		t.Fatalf("extension notice: got %+v", d)
	}
	for _, tc := range []struct {
		at   time.Time
		want []string
	}{
		{t0(), nil},
		{retry1, []string{"prq_xn1"}},
		{retry2, []string{"prq_xn2", "prq_xn1"}},
	} {
		rs, err := s.PrivacyRequests(ctx, store.PrivacyFilter{ExtensionNoticeDueAt: &tc.at})
		must(t, "PrivacyRequests", err)
		var ids []string
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
			t.Errorf("notices due at %v: got %v, want %v", tc.at, ids, tc.want)
		}
	}
	set("prq_xn1", store.NoticeDelivery{Attempts: 3, DeliveredAt: &retry1})
	got, err = s.PrivacyRequest(ctx, "prq_xn1")
	must(t, "PrivacyRequest", err)
	if d := got.ExtensionNotice; d.DeliveredAt == nil || !d.DeliveredAt.Equal(retry1) || d.RetryAt != nil || d.Error != "" {
		t.Fatalf("delivered extension notice: got %+v", d)
	}
}

func testExportTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acc_e1")
	mkAccount(t, s, "acc_e2")
	mkRequest(t, s, "prq_e1", "acc_e1", store.RequestAccess, store.RequestCompleted, 0)
	tok := &store.ExportToken{Hash: []byte("tok-1"), RequestID: "prq_e1", AccountID: "acc_e1", CreatedAt: t0(), ExpiresAt: t0().Add(time.Hour)}
	must(t, "CreateExportToken", s.CreateExportToken(ctx, tok))
	wantCode(t, "duplicate", s.CreateExportToken(ctx, tok), errs.Conflict)
	for _, tc := range []struct {
		name    string
		hash    string
		req, ac string
		at      time.Time
		want    errs.Code
	}{
		{"other account", "tok-1", "prq_e1", "acc_e2", t0(), errs.Gone},
		{"other request", "tok-1", "prq_other", "acc_e1", t0(), errs.Gone},
		{"expired", "tok-1", "prq_e1", "acc_e1", t0().Add(time.Hour), errs.Gone},
		{"valid", "tok-1", "prq_e1", "acc_e1", t0().Add(time.Minute), ""},
		{"used", "tok-1", "prq_e1", "acc_e1", t0().Add(time.Minute), errs.Gone},
		{"unknown", "tok-x", "prq_e1", "acc_e1", t0(), errs.Gone},
		{"empty", "", "prq_e1", "acc_e1", t0(), errs.Gone},
	} {
		wantCode(t, tc.name, s.ConsumeExportToken(ctx, []byte(tc.hash), tc.req, tc.ac, tc.at), tc.want)
	}
}

func testContactChange(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acc_c1")
	other := mkAccount(t, s, "acc_c2")
	wantCode(t, "apply none", s.ApplyContactChange(ctx, "acc_c1", store.Email, t0()), errs.NotFound)
	wantCode(t, "bad channel", s.PutContactChange(ctx, &store.ContactChange{AccountID: "acc_c1", Channel: "fax", Sealed: []byte("x"), Index: []byte("y")}), errs.Invalid)

	put := func(idx []byte, exp time.Time) {
		must(t, "PutContactChange", s.PutContactChange(ctx, &store.ContactChange{AccountID: "acc_c1", Channel: store.Email,
			Sealed: []byte("new-sealed"), Index: idx, CreatedAt: t0(), ExpiresAt: exp}))
	}
	// Taken by another account: Conflict, and nothing changes.
	put(other.EmailIndex, t0().Add(time.Hour))
	wantCode(t, "apply taken", s.ApplyContactChange(ctx, "acc_c1", store.Email, t0()), errs.Conflict)
	// Expired.
	put([]byte("new-index"), t0().Add(time.Minute))
	wantCode(t, "apply expired", s.ApplyContactChange(ctx, "acc_c1", store.Email, t0().Add(time.Minute)), errs.Gone)
	// Replaced by a fresh one, then applied.
	put([]byte("new-index"), t0().Add(time.Hour))
	must(t, "apply", s.ApplyContactChange(ctx, "acc_c1", store.Email, t0()))
	a, err := s.Account(ctx, "acc_c1")
	must(t, "Account", err)
	if !bytes.Equal(a.EmailSealed, []byte("new-sealed")) || !bytes.Equal(a.EmailIndex, []byte("new-index")) || !a.EmailVerified {
		t.Fatalf("after apply: got sealed %q index %q verified %v, want the new values, verified", a.EmailSealed, a.EmailIndex, a.EmailVerified)
	}
	if !bytes.Equal(a.MobileSealed, []byte("sealed-mobile-acc_c1")) {
		t.Fatalf("mobile changed: got %q", a.MobileSealed)
	}
	wantCode(t, "apply twice", s.ApplyContactChange(ctx, "acc_c1", store.Email, t0()), errs.NotFound)
}

// erasureFixture makes an account with two devices, intervals, tokens and
// an erasure request awaiting execution, and returns the account.
func erasureFixture(t *testing.T, s store.Store, acct, req string, key int) *store.Account {
	t.Helper()
	ctx := t.Context()
	a := mkAccount(t, s, acct)
	mkDevice(t, s, acct, "dev_"+acct+"_1", key)
	mkDevice(t, s, acct, "dev_"+acct+"_2", key+1)
	start := t0().Truncate(time.Minute)
	end := start.Add(time.Hour)
	if _, err := s.RecordIntervals(ctx, "eu", []store.Interval{
		{DeviceID: "dev_" + acct + "_1", Start: start, End: &end},
		{DeviceID: "dev_" + acct + "_2", Start: start.Add(time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	must(t, "CreateToken", s.CreateToken(ctx, &store.Token{Hash: []byte("tok-" + acct), AccountID: acct, CreatedAt: t0(), ExpiresAt: t0().Add(time.Hour)}))
	must(t, "PostMessage", s.PostMessage(ctx, &store.Message{ID: "msg_" + acct, AccountID: acct, Kind: "privacy-denied",
		Sealed: []byte("sealed message to " + acct), CreatedAt: t0()}))
	must(t, "CreateResetToken", s.CreateResetToken(ctx, &store.ResetToken{Hash: []byte("reset-" + acct), AccountID: acct, CreatedAt: t0(), ExpiresAt: t0().Add(time.Hour)}))
	mkRequest(t, s, req, acct, store.RequestErasure, store.RequestVerified, 0)
	mkRequest(t, s, req+"_old", acct, store.RequestAccess, store.RequestCompleted, -time.Hour)
	return a
}

func testEraseAccount(t *testing.T, s store.Store) {
	ctx := t.Context()
	erasureFixture(t, s, "acc_x1", "prq_x1", 701)
	mkAccount(t, s, "acc_keep")
	mkDevice(t, s, "acc_keep", "dev_keep", 799)
	_, before, err := Snapshot(ctx, s)
	must(t, "PeerSnapshot", err)

	// Wrong request shapes are refused before anything happens.
	mkRequest(t, s, "prq_pending", "acc_x1", store.RequestErasure, store.RequestPending, 0)
	for _, tc := range []struct {
		name string
		e    store.Erasure
		want errs.Code
	}{
		{"unknown request", store.Erasure{RequestID: "prq_none", AccountID: "acc_x1", At: t0()}, errs.NotFound},
		{"other account", store.Erasure{RequestID: "prq_x1", AccountID: "acc_keep", At: t0()}, errs.Precondition},
		{"not an erasure", store.Erasure{RequestID: "prq_x1_old", AccountID: "acc_x1", At: t0()}, errs.Precondition},
		{"not verified", store.Erasure{RequestID: "prq_pending", AccountID: "acc_x1", At: t0()}, errs.Precondition},
	} {
		_, err := s.EraseAccount(ctx, tc.e)
		wantCode(t, tc.name, err, tc.want)
	}

	res, err := s.EraseAccount(ctx, store.Erasure{RequestID: "prq_x1", AccountID: "acc_x1", At: t0().Add(time.Hour), Outcome: "erased"})
	must(t, "EraseAccount", err)
	if res.Devices != 2 || res.SessionsDeleted != 2 {
		t.Fatalf("got %+v, want 2 devices and 2 sessions deleted", res)
	}
	checkErased(t, s, "acc_x1", "prq_x1")
	// The feed tells gateways to drop both peers; the other account's
	// device stays.
	changes, err := s.PeerChanges(ctx, before, 100)
	must(t, "PeerChanges", err)
	if len(changes) != 2 || !changes[0].Removed || !changes[1].Removed {
		t.Fatalf("feed after erasure: got %+v, want two removals", changes)
	}
	if ds, _ := s.Devices(ctx, "acc_keep"); len(ds) != 1 {
		t.Fatalf("other account: got %d devices, want 1", len(ds))
	}
	// Erasing again is refused: the request is completed.
	_, err = s.EraseAccount(ctx, store.Erasure{RequestID: "prq_x1", AccountID: "acc_x1", At: t0()})
	wantCode(t, "erase twice", err, errs.Precondition)
}

// checkErased asserts the account is fully erased and the tombstone exists.
func checkErased(t *testing.T, s store.Store, acct, req string) {
	t.Helper()
	ctx := t.Context()
	a, err := s.Account(ctx, acct)
	must(t, "Account", err)
	if a.Status != store.StatusClosed || a.WrappedKey != nil || a.EmailSealed != nil || a.MobileSealed != nil ||
		a.EmailIndex != nil || a.MobileIndex != nil || a.PasswordHash != "" {
		t.Fatalf("erased account: got %+v, want closed with no key, sealed fields, indexes or password", a)
	}
	if ds, _ := s.Devices(ctx, acct); len(ds) != 0 {
		t.Fatalf("got %d devices, want 0", len(ds))
	}
	if ivs, _ := s.Usage(ctx, acct, time.Unix(0, 0), 100); len(ivs) != 0 {
		t.Fatalf("got %d intervals, want 0", len(ivs))
	}
	if _, err := s.TokenByHash(ctx, []byte("tok-"+acct), t0()); !errs.Is(err, errs.NotFound) {
		t.Fatalf("token after erasure: got %v, want NotFound", err)
	}
	if ms, _, _ := s.Messages(ctx, acct, 10); len(ms) != 0 {
		t.Fatalf("got %d inbox messages, want 0", len(ms))
	}
	if _, err := s.ConsumeResetToken(ctx, []byte("reset-"+acct), t0()); !errs.Is(err, errs.Gone) {
		t.Fatalf("reset token after erasure: got %v, want Gone", err)
	}
	if rs, _ := s.PrivacyRequests(ctx, store.PrivacyFilter{AccountID: acct}); len(rs) != 0 {
		t.Fatalf("got %d requests still linked to the account, want 0", len(rs))
	}
	r, err := s.PrivacyRequest(ctx, req)
	must(t, "PrivacyRequest", err)
	if r.Status != store.RequestCompleted || r.AccountID != "" || r.Sealed != nil {
		t.Fatalf("erasure request: got %+v, want completed, detached and without its text", r)
	}
	old, err := s.PrivacyRequest(ctx, req+"_old")
	must(t, "PrivacyRequest", err)
	if old.AccountID != "" || old.Sealed != nil {
		t.Fatalf("earlier request: got %+v, want detached and without its text", old)
	}
	ts, err := s.Tombstone(ctx, req)
	must(t, "Tombstone", err)
	if ts.RequestID != req {
		t.Fatalf("tombstone: got %+v", ts)
	}
}

func testEraseAccountHeld(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := erasureFixture(t, s, "acc_h1", "prq_h1", 801)
	res, err := s.EraseAccount(ctx, store.Erasure{RequestID: "prq_h1", AccountID: "acc_h1", At: t0().Add(time.Hour), KeepHeld: true})
	must(t, "EraseAccount held", err)
	if res.Devices != 2 || res.SessionsKept != 2 || res.SessionsDeleted != 0 {
		t.Fatalf("got %+v, want 2 devices removed, 2 sessions kept", res)
	}
	got, err := s.Account(ctx, "acc_h1")
	must(t, "Account", err)
	if got.Status != store.StatusClosed || !bytes.Equal(got.WrappedKey, a.WrappedKey) || !bytes.Equal(got.EmailSealed, a.EmailSealed) ||
		got.EmailIndex != nil || got.PasswordHash != "" {
		t.Fatalf("held account: got %+v, want closed, key and sealed data kept, index and password gone", got)
	}
	ivs, _ := s.Usage(ctx, "acc_h1", time.Unix(0, 0), 100)
	if len(ivs) != 2 || ivs[0].End == nil || ivs[1].End == nil {
		t.Fatalf("held intervals: got %+v, want both kept and closed", ivs)
	}
	if r, _ := s.PrivacyRequest(ctx, "prq_h1"); r.Status != store.RequestHeld || r.AccountID != "acc_h1" || string(r.Sealed) != "sealed text of prq_h1" {
		t.Fatalf("held request: got %+v, want status held, still linked, its text kept", r)
	}
	if ms, _, _ := s.Messages(ctx, "acc_h1", 10); len(ms) != 0 {
		t.Fatalf("held erasure: got %d inbox messages, want 0 (a hold keeps no messages)", len(ms))
	}
	if _, err := s.Tombstone(ctx, "prq_h1"); !errs.Is(err, errs.NotFound) {
		t.Fatalf("tombstone under hold: got %v, want NotFound", err)
	}
	// Once the hold ends, the rest goes.
	_, err = s.EraseAccount(ctx, store.Erasure{RequestID: "prq_h1", AccountID: "acc_h1", At: t0().Add(2 * time.Hour)})
	must(t, "EraseAccount after hold", err)
	checkErased(t, s, "acc_h1", "prq_h1")
}

// testEraseRemovesDevicesAsDelete deletes the devices of one account one
// by one and erases an account set up the same way, and checks that both
// leave the same traces: one removal per device in the peer feed, in
// creation order, naming only the device, and no other entry of the
// devices; every open session interval ended; the addresses free for the
// next devices.
func testEraseRemovesDevicesAsDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	start := t0().Truncate(time.Minute)
	setup := func(acct string, key int) []*store.Device {
		mkAccount(t, s, acct)
		ds := []*store.Device{mkDevice(t, s, acct, acct+"_1", key), mkDevice(t, s, acct, acct+"_2", key+1)}
		if _, err := s.RecordIntervals(ctx, "eu", []store.Interval{
			{DeviceID: ds[0].ID, Start: start}, {DeviceID: ds[1].ID, Start: start.Add(time.Minute)},
		}); err != nil {
			t.Fatal(err)
		}
		return ds
	}
	// A bystander's device keeps the feed's oldest entry.
	mkAccount(t, s, "acc_db")
	by := mkDevice(t, s, "acc_db", "acc_db_1", 1000)
	_, v0, err := Snapshot(ctx, s)
	must(t, "PeerSnapshot", err)
	deleted, erased := setup("acc_dd", 1001), setup("acc_de", 1011)
	mkRequest(t, s, "prq_de", "acc_de", store.RequestErasure, store.RequestVerified, 0)
	_, v, err := Snapshot(ctx, s)
	must(t, "PeerSnapshot", err)

	for _, d := range deleted {
		must(t, "DeleteDevice", s.DeleteDevice(ctx, d.AccountID, d.ID))
	}
	// KeepHeld keeps the session intervals, so their ends can be seen.
	res, err := s.EraseAccount(ctx, store.Erasure{RequestID: "prq_de", AccountID: "acc_de", At: start.Add(2 * time.Hour), KeepHeld: true})
	must(t, "EraseAccount", err)
	if res.Devices != 2 {
		t.Fatalf("erasure: got %d devices removed, want 2", res.Devices)
	}

	// The whole feed: the bystander's addition; the devices' additions,
	// each now a removal naming only the device; then one such removal
	// per device, in creation order.
	changes, err := s.PeerChanges(ctx, v0-1, 100)
	must(t, "PeerChanges", err)
	want := []store.PeerChange{{Peer: store.Peer{DeviceID: by.ID, PublicKey: by.PublicKey, IPv4: by.IPv4, IPv6: by.IPv6}}}
	for range 2 {
		for _, d := range append(deleted, erased...) {
			want = append(want, store.PeerChange{Removed: true, Peer: store.Peer{DeviceID: d.ID}})
		}
	}
	var got []store.PeerChange
	for i, c := range changes {
		if i > len(want)/2 && c.Version <= v {
			t.Fatalf("feed: entry %+v is not after the removals", c)
		}
		c.Version = 0
		got = append(got, c)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("feed: got %+v, want %+v", got, want)
	}
	for _, acct := range []string{"acc_dd", "acc_de"} {
		ivs, err := s.Usage(ctx, acct, time.Unix(0, 0), 10)
		must(t, "Usage", err)
		if len(ivs) != 2 || ivs[0].End == nil || ivs[1].End == nil {
			t.Fatalf("%s intervals: got %+v, want both ended", acct, ivs)
		}
	}
	freed := map[netip.Addr]bool{}
	for _, d := range append(deleted, erased...) {
		freed[d.IPv4] = true
	}
	mkAccount(t, s, "acc_dn")
	for i := range 4 {
		d := mkDevice(t, s, "acc_dn", fmt.Sprintf("dev_dn_%d", i), 1021+i)
		if !freed[d.IPv4] {
			t.Fatalf("new device %d: got %v, want one of the freed addresses %v", i, d.IPv4, freed)
		}
		delete(freed, d.IPv4)
	}
}

// erasureSteps are the steps of EraseAccount, each with a fault on the
// last statement of the step, so that everything before it in the
// transaction has run when it fails, and the words the store's error
// names that statement with.
var erasureSteps = []struct {
	step  string
	fault Fault
	where string
}{
	{"credentials", Fault{Table: "pending_contact_changes", Event: "DELETE"}, "delete credentials"},
	{"inbox", Fault{Table: "inbox", Event: "DELETE"}, "delete inbox"},
	{"devices", Fault{Table: "peer_feed", Event: "UPDATE"}, "advance peer feed"},
	{"sessions", Fault{Table: "usage_sessions", Event: "DELETE"}, "delete sessions"},
	{"account", Fault{Table: "accounts", Event: "UPDATE", When: "NEW.status = 'closed'"}, "close account"},
	{"requests", Fault{Table: "privacy_requests", Event: "UPDATE", When: "NEW.account_id IS NULL"}, "detach requests"},
	{"tombstone", Fault{Table: "erasure_tombstones", Event: "INSERT"}, "write tombstone"},
}

// testEraseAccountInterrupted makes the erasure transaction fail at the
// end of each of its steps in turn, by a trigger on the real database,
// and checks that not one row of the database changed; then the erasure
// runs to the end.
func testEraseAccountInterrupted(t *testing.T, b Backend) {
	ctx := t.Context()
	s, db := b.OpenWithDB(t)
	erasureFixture(t, s, "acc_i1", "prq_i1", 901)
	// Something for every step to change: a pending contact change too.
	must(t, "PutContactChange", s.PutContactChange(ctx, &store.ContactChange{AccountID: "acc_i1", Channel: store.Email,
		Sealed: []byte("new-sealed"), Index: []byte("new-index"), CreatedAt: t0(), ExpiresAt: t0().Add(time.Hour)}))
	before := Dump(t, b.Name, db)
	for _, st := range erasureSteps {
		t.Run(st.step, func(t *testing.T) {
			remove := InjectFault(t, b.Name, db, st.fault)
			_, err := s.EraseAccount(ctx, store.Erasure{RequestID: "prq_i1", AccountID: "acc_i1", At: t0()})
			remove()
			if !IsFault(err) || !strings.Contains(err.Error(), st.where) {
				t.Fatalf("got %v, want the injected fault at %q", err, st.where)
			}
			if after := Dump(t, b.Name, db); !reflect.DeepEqual(after, before) {
				for tbl := range before {
					if !reflect.DeepEqual(after[tbl], before[tbl]) {
						t.Errorf("after a failure at %s, table %s: got %v, want %v", st.step, tbl, after[tbl], before[tbl])
					}
				}
				t.FailNow()
			}
		})
	}
	_, err := s.EraseAccount(ctx, store.Erasure{RequestID: "prq_i1", AccountID: "acc_i1", At: t0()})
	must(t, "EraseAccount resumed", err)
	checkErased(t, s, "acc_i1", "prq_i1")
}
