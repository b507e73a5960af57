package storetest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/nitronet/nitronet/internal/dnsblock"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/store"
)

// t0 returns the suite's reference time; every time the suite stores is
// derived from it.
func t0() time.Time { return time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC) }

// Run runs the store contract suite. open must return a fresh, empty store
// that it closes when t ends; Run calls it once per subtest. The suite
// assumes an address pool with room for at least a few hundred devices.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Accounts", testAccounts},
		{"AccountTimes", testAccountTimes},
		{"SetVerified", testSetVerified},
		{"AttachMobile", testAttachMobile},
		{"SetPassword", testSetPassword},
		{"Tokens", testTokens},
		{"Codes", testCodes},
		{"ResetTokens", testResetTokens},
		{"ResetTokenConcurrent", testResetTokenConcurrent},
		{"CreateDeviceErrors", testCreateDeviceErrors},
		{"DeviceLimit", testDeviceLimit},
		{"DeviceOwnership", testDeviceOwnership},
		{"DevicesOrder", testDevicesOrder},
		{"UpdateDevice", testUpdateDevice},
		{"DeviceDNSBlocking", testDeviceDNSBlocking},
		{"DeviceKeyAge", testDeviceKeyAge},
		{"DeviceNameIndex", testDeviceNameIndex},
		{"DeleteDevice", testDeleteDevice},
		{"AddressReuse", testAddressReuse},
		{"ConcurrentCreateDevice", testConcurrentCreateDevice},
		{"ConcurrentDeviceLimit", testConcurrentDeviceLimit},
		{"PeerFeed", testPeerFeed},
		{"PeerFeedErrors", testPeerFeedErrors},
		{"PeerSnapshotConsistency", testPeerSnapshotConsistency},
		{"PeerSnapshotStream", testPeerSnapshotStream},
		{"Gateways", testGateways},
		{"GatewayEnrollConcurrent", testGatewayEnrollConcurrent},
		{"GatewayUpdate", testGatewayUpdate},
		{"Usage", testUsage},
		{"Inbox", testInbox},
		{"NoticeRuns", testNoticeRuns},
		{"PolicyDocuments", testPolicyDocuments},
		{"Retention", testRetention},
		{"PrivacyRequests", testPrivacyRequests},
		{"ExtensionNotice", testExtensionNotice},
		{"ExportTokens", testExportTokens},
		{"ContactChange", testContactChange},
		{"EraseAccount", testEraseAccount},
		{"EraseAccountHeld", testEraseAccountHeld},
		{"EraseRemovesDevicesAsDelete", testEraseRemovesDevicesAsDelete},
		{"Staff", testStaff},
		{"StaffBootstrap", testStaffBootstrap},
		{"StaffBootstrapConcurrent", testStaffBootstrapConcurrent},
		{"StaffLastAdmin", testStaffLastAdmin},
		{"StaffLastAdminConcurrent", testStaffLastAdminConcurrent},
		{"StaffTOTP", testStaffTOTP},
		{"Audit", testAudit},
		{"AuditConcurrent", testAuditConcurrent},
		{"AuditHead", testAuditHead},
		{"Holds", testHolds},
		{"AcceptanceRetention", testAcceptanceRetention},
		{"Disclosures", testDisclosures},
		{"Processors", testProcessors},
		{"DailyUsage", testDailyUsage},
		{"OutsideRequests", testOutsideRequests},
		{"ProcessorTransfers", testProcessorTransfers},
		{"RequestRecipients", testRequestRecipients},
		{"Breaches", testBreaches},
		{"ListedNoticeRuns", testListedNoticeRuns},
		{"StatsLedger", testStatsLedger},
		{"NoticeExclusion", testNoticeExclusion},
		{"Rekey", testRekey},
		{"CloseStaleSessions", testCloseStaleSessions},
		{"DeleteMessage", testDeleteMessage},
		{"Outbound", testOutbound},
		{"OutboundConcurrent", testOutboundConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// RunFaults runs the tests that reach under the store into its database,
// to make statements fail (InjectFault) and to compare every row (Dump),
// on backend b.
func RunFaults(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"EraseAccountInterrupted", testEraseAccountInterrupted},
		{"PlainTexts", testPlainTexts},
		{"ErasureClearsPlaintext", testErasureClearsPlaintext},
		{"AuditTailRemoved", testAuditTailRemoved},
		{"ScrubAwaitsOlderSnapshot", testScrubAwaitsOlderSnapshot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, b)
		})
	}
}

// wantCode fails t unless err carries code (code "" means err must be nil).
func wantCode(t *testing.T, what string, err error, code errs.Code) {
	t.Helper()
	if got := errs.CodeOf(err); got != code {
		t.Fatalf("%s: got error %v (code %q), want code %q", what, err, got, code)
	}
}

// must fails t if err is not nil.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: got error %v, want nil", what, err)
	}
}

// PublicKey returns a valid, distinct WireGuard public key for n.
func PublicKey(n int) string {
	var b [32]byte
	b[0] = 0x4e // never all zero
	binary.BigEndian.PutUint64(b[24:], uint64(n))
	return base64.StdEncoding.EncodeToString(b[:])
}

// newAccount builds an active account with distinct blind indexes.
func newAccount(id string) *store.Account {
	return &store.Account{
		ID:           id,
		EmailSealed:  []byte("sealed-email-" + id),
		MobileSealed: []byte("sealed-mobile-" + id),
		WrappedKey:   []byte("wrapped-key-" + id),
		EmailIndex:   []byte("email-index-" + id),
		MobileIndex:  []byte("mobile-index-" + id),
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$" + id,
		Status:       store.StatusActive,
		CreatedAt:    t0(),
	}
}

// mkAccount creates an account with id.
func mkAccount(t *testing.T, s store.Store, id string) *store.Account {
	t.Helper()
	a := newAccount(id)
	must(t, "CreateAccount "+id, s.CreateAccount(t.Context(), a))
	return a
}

// mkDevice creates a device with key PublicKey(key), created at t0()+key
// seconds, under a generous limit.
func mkDevice(t *testing.T, s store.Store, accountID, id string, key int) *store.Device {
	t.Helper()
	d := &store.Device{
		ID:         id,
		AccountID:  accountID,
		SealedName: []byte("sealed name of " + id),
		PublicKey:  PublicKey(key),
		CreatedAt:  t0().Add(time.Duration(key) * time.Second),
	}
	must(t, "CreateDevice "+id, s.CreateDevice(t.Context(), d, 1000))
	return d
}

func testAccounts(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkAccount(t, s, "acct-a")
	got, err := s.Account(ctx, "acct-a")
	must(t, "Account", err)
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("Account: got %+v, want %+v", got, a)
	}
	got, err = s.AccountByEmailIndex(ctx, a.EmailIndex)
	must(t, "AccountByEmailIndex", err)
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("AccountByEmailIndex: got %+v, want %+v", got, a)
	}

	// A minimal account: no mobile, status defaulted.
	minimal := &store.Account{ID: "acct-min", EmailIndex: []byte("email-index-min"), CreatedAt: t0()}
	must(t, "CreateAccount minimal", s.CreateAccount(ctx, minimal))
	if minimal.Status != store.StatusActive {
		t.Fatalf("CreateAccount minimal: got status %q, want %q", minimal.Status, store.StatusActive)
	}
	got, err = s.Account(ctx, "acct-min")
	must(t, "Account minimal", err)
	if got.MobileIndex != nil || got.MobileSealed != nil || got.Status != store.StatusActive {
		t.Fatalf("Account minimal: got %+v, want no mobile and status active", got)
	}

	closed := newAccount("acct-closed")
	closed.Status = store.StatusClosed
	must(t, "CreateAccount closed", s.CreateAccount(ctx, closed))

	dupEmail := newAccount("acct-b")
	dupEmail.EmailIndex = a.EmailIndex
	dupMobile := newAccount("acct-c")
	dupMobile.MobileIndex = a.MobileIndex
	noMobile := newAccount("acct-d")
	noMobile.MobileIndex = nil
	noMobile2 := newAccount("acct-e")
	noMobile2.MobileIndex = nil

	errCases := []struct {
		name string
		a    *store.Account
		want errs.Code
	}{
		{"duplicate id", newAccount("acct-a"), errs.Conflict},
		{"duplicate email index", dupEmail, errs.Conflict},
		{"duplicate mobile index", dupMobile, errs.Conflict},
		{"empty id", newAccount(""), errs.Invalid},
		{"no mobile", noMobile, ""},
		{"second without mobile", noMobile2, ""},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, "CreateAccount", s.CreateAccount(ctx, tc.a), tc.want)
		})
	}

	lookups := []struct {
		name  string
		index []byte
		want  string // account id, "" for NotFound
	}{
		{"active", a.EmailIndex, "acct-a"},
		{"closed account", closed.EmailIndex, ""},
		{"unknown", []byte("nope"), ""},
		{"empty", nil, ""},
	}
	for _, tc := range lookups {
		t.Run("by email "+tc.name, func(t *testing.T) {
			got, err := s.AccountByEmailIndex(ctx, tc.index)
			if tc.want == "" {
				wantCode(t, "AccountByEmailIndex", err, errs.NotFound)
				return
			}
			must(t, "AccountByEmailIndex", err)
			if got.ID != tc.want {
				t.Fatalf("AccountByEmailIndex: got id %q, want %q", got.ID, tc.want)
			}
		})
	}
	_, err = s.Account(ctx, "acct-unknown")
	wantCode(t, "Account unknown", err, errs.NotFound)
	got, err = s.Account(ctx, "acct-closed")
	must(t, "Account closed", err)
	if got.Status != store.StatusClosed {
		t.Fatalf("Account closed: got status %q, want %q", got.Status, store.StatusClosed)
	}
}

func testAccountTimes(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newAccount("acct-t")
	zone := time.FixedZone("UTC+5", 5*3600)
	a.CreatedAt = time.Date(2025, 3, 14, 20, 9, 26, 987654321, zone)
	must(t, "CreateAccount", s.CreateAccount(ctx, a))
	got, err := s.Account(ctx, a.ID)
	must(t, "Account", err)
	want := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	if !got.CreatedAt.Equal(want) || got.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreatedAt: got %v, want %v (second precision, UTC)", got.CreatedAt, want)
	}
}

func testSetVerified(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-v")
	cases := []struct {
		name               string
		id                 string
		ch                 store.Channel
		want               errs.Code
		wantEmail, wantMob bool
	}{
		{"email", "acct-v", store.Email, "", true, false},
		{"mobile", "acct-v", store.Mobile, "", true, true},
		{"again", "acct-v", store.Email, "", true, true},
		{"bad channel", "acct-v", store.Channel("fax"), errs.Invalid, true, true},
		{"unknown account", "acct-none", store.Email, errs.NotFound, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, "SetVerified", s.SetVerified(ctx, tc.id, tc.ch), tc.want)
			a, err := s.Account(ctx, "acct-v")
			must(t, "Account", err)
			if a.EmailVerified != tc.wantEmail || a.MobileVerified != tc.wantMob {
				t.Fatalf("verified: got email=%v mobile=%v, want email=%v mobile=%v",
					a.EmailVerified, a.MobileVerified, tc.wantEmail, tc.wantMob)
			}
		})
	}
}

// testAttachMobile: an account stored without a mobile index (its number
// belonged to another account) cannot verify the number until it attaches
// it, which works only once the number is free.
func testAttachMobile(t *testing.T, s store.Store) {
	ctx := t.Context()
	owner := mkAccount(t, s, "acct-owner")
	late := newAccount("acct-late")
	late.MobileIndex = nil
	must(t, "CreateAccount without mobile index", s.CreateAccount(ctx, late))
	wantCode(t, "verify an unattached mobile", s.SetVerified(ctx, "acct-late", store.Mobile), errs.Precondition)
	got, err := s.AccountByMobileIndex(ctx, owner.MobileIndex)
	if err != nil || got.ID != "acct-owner" {
		t.Fatalf("AccountByMobileIndex: got %+v, %v; want acct-owner", got, err)
	}
	_, err = s.AccountByMobileIndex(ctx, nil)
	wantCode(t, "AccountByMobileIndex empty", err, errs.NotFound)
	_, err = s.AccountByMobileIndex(ctx, []byte("nobody"))
	wantCode(t, "AccountByMobileIndex unknown", err, errs.NotFound)
	wantCode(t, "attach a taken number", s.AttachMobile(ctx, "acct-late", owner.MobileIndex), errs.Conflict)
	wantCode(t, "attach to an unknown account", s.AttachMobile(ctx, "acct-none", []byte("m")), errs.NotFound)
	wantCode(t, "attach over an attached number", s.AttachMobile(ctx, "acct-owner", []byte("m")), errs.Precondition)
	must(t, "AttachMobile", s.AttachMobile(ctx, "acct-late", []byte("mobile-index-late")))
	must(t, "verify the attached mobile", s.SetVerified(ctx, "acct-late", store.Mobile))
	if a, _ := s.Account(ctx, "acct-late"); !a.MobileVerified || string(a.MobileIndex) != "mobile-index-late" {
		t.Fatalf("after attaching: got %+v", a)
	}
}

func testSetPassword(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-p")
	mkAccount(t, s, "acct-q")
	for i, id := range []string{"acct-p", "acct-p", "acct-q"} {
		must(t, "CreateToken", s.CreateToken(ctx, &store.Token{
			Hash: []byte{byte(i)}, AccountID: id, CreatedAt: t0(), ExpiresAt: t0().Add(time.Hour),
		}))
	}
	must(t, "SetPassword", s.SetPassword(ctx, "acct-p", "new-hash"))
	a, err := s.Account(ctx, "acct-p")
	must(t, "Account", err)
	if a.PasswordHash != "new-hash" {
		t.Fatalf("PasswordHash: got %q, want %q", a.PasswordHash, "new-hash")
	}
	for i, want := range []errs.Code{errs.NotFound, errs.NotFound, ""} {
		_, err := s.TokenByHash(ctx, []byte{byte(i)}, t0())
		wantCode(t, fmt.Sprintf("TokenByHash %d after SetPassword", i), err, want)
	}
	wantCode(t, "SetPassword unknown", s.SetPassword(ctx, "acct-none", "x"), errs.NotFound)
}

func testTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-a")
	mkAccount(t, s, "acct-b")
	tok := &store.Token{Hash: []byte("hash-1"), AccountID: "acct-a", CreatedAt: t0(), ExpiresAt: t0().Add(time.Hour)}
	must(t, "CreateToken", s.CreateToken(ctx, tok))
	must(t, "CreateToken 2", s.CreateToken(ctx, &store.Token{
		Hash: []byte("hash-2"), AccountID: "acct-a", CreatedAt: t0(), ExpiresAt: t0().Add(time.Hour)}))
	must(t, "CreateToken 3", s.CreateToken(ctx, &store.Token{
		Hash: []byte("hash-3"), AccountID: "acct-b", CreatedAt: t0(), ExpiresAt: t0().Add(time.Hour)}))

	createErrs := []struct {
		name string
		tok  *store.Token
		want errs.Code
	}{
		{"duplicate hash", &store.Token{Hash: []byte("hash-1"), AccountID: "acct-b", CreatedAt: t0(), ExpiresAt: t0()}, errs.Conflict},
		{"unknown account", &store.Token{Hash: []byte("hash-x"), AccountID: "acct-none", CreatedAt: t0(), ExpiresAt: t0()}, errs.NotFound},
		{"empty hash", &store.Token{AccountID: "acct-a", CreatedAt: t0(), ExpiresAt: t0()}, errs.Invalid},
	}
	for _, tc := range createErrs {
		t.Run("create "+tc.name, func(t *testing.T) {
			wantCode(t, "CreateToken", s.CreateToken(ctx, tc.tok), tc.want)
		})
	}

	lookups := []struct {
		name string
		hash string
		now  time.Time
		want errs.Code
	}{
		{"valid", "hash-1", t0(), ""},
		{"just before expiry", "hash-1", t0().Add(time.Hour - time.Second), ""},
		{"at expiry", "hash-1", t0().Add(time.Hour), errs.NotFound},
		{"after expiry", "hash-1", t0().Add(2 * time.Hour), errs.NotFound},
		{"unknown", "hash-none", t0(), errs.NotFound},
		{"empty", "", t0(), errs.NotFound},
	}
	for _, tc := range lookups {
		t.Run("lookup "+tc.name, func(t *testing.T) {
			got, err := s.TokenByHash(ctx, []byte(tc.hash), tc.now)
			wantCode(t, "TokenByHash", err, tc.want)
			if err == nil && !reflect.DeepEqual(got, tok) {
				t.Fatalf("TokenByHash: got %+v, want %+v", got, tok)
			}
		})
	}

	must(t, "DeleteToken", s.DeleteToken(ctx, []byte("hash-1")))
	_, err := s.TokenByHash(ctx, []byte("hash-1"), t0())
	wantCode(t, "TokenByHash after delete", err, errs.NotFound)
	must(t, "DeleteToken absent", s.DeleteToken(ctx, []byte("hash-1")))

	must(t, "DeleteAccountTokens", s.DeleteAccountTokens(ctx, "acct-a"))
	_, err = s.TokenByHash(ctx, []byte("hash-2"), t0())
	wantCode(t, "TokenByHash after DeleteAccountTokens", err, errs.NotFound)
	_, err = s.TokenByHash(ctx, []byte("hash-3"), t0())
	wantCode(t, "other account's token after DeleteAccountTokens", err, "")
	must(t, "DeleteAccountTokens none left", s.DeleteAccountTokens(ctx, "acct-a"))
}

func testCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-c")
	const verify = "verify"

	_, err := s.ActiveCode(ctx, "acct-c", store.Email, verify)
	wantCode(t, "ActiveCode before PutCode", err, errs.NotFound)
	_, err = s.CountCodeAttempt(ctx, "acct-c", store.Email, verify)
	wantCode(t, "CountCodeAttempt before PutCode", err, errs.NotFound)
	wantCode(t, "UseCode before PutCode", s.UseCode(ctx, "acct-c", store.Email, verify, t0()), errs.Gone)

	c1 := &store.Code{AccountID: "acct-c", Channel: store.Email, Purpose: verify,
		Hash: []byte("code-1"), ExpiresAt: t0().Add(10 * time.Minute), CreatedAt: t0()}
	must(t, "PutCode", s.PutCode(ctx, c1))
	got, err := s.ActiveCode(ctx, "acct-c", store.Email, verify)
	must(t, "ActiveCode", err)
	if !reflect.DeepEqual(got, c1) {
		t.Fatalf("ActiveCode: got %+v, want %+v", got, c1)
	}
	for want := 1; want <= 3; want++ {
		n, err := s.CountCodeAttempt(ctx, "acct-c", store.Email, verify)
		must(t, "CountCodeAttempt", err)
		if n != want {
			t.Fatalf("CountCodeAttempt: got %d, want %d", n, want)
		}
	}
	got, err = s.ActiveCode(ctx, "acct-c", store.Email, verify)
	must(t, "ActiveCode", err)
	if got.Attempts != 3 {
		t.Fatalf("ActiveCode attempts: got %d, want 3", got.Attempts)
	}

	// Replacing resets the attempts and swaps the hash.
	c2 := &store.Code{AccountID: "acct-c", Channel: store.Email, Purpose: verify,
		Hash: []byte("code-2"), ExpiresAt: t0().Add(20 * time.Minute), CreatedAt: t0().Add(time.Minute)}
	must(t, "PutCode replace", s.PutCode(ctx, c2))
	got, err = s.ActiveCode(ctx, "acct-c", store.Email, verify)
	must(t, "ActiveCode after replace", err)
	if !reflect.DeepEqual(got, c2) {
		t.Fatalf("ActiveCode after replace: got %+v, want %+v", got, c2)
	}

	// Other channels and purposes are independent.
	others := []*store.Code{
		{AccountID: "acct-c", Channel: store.Mobile, Purpose: verify, Hash: []byte("m"), ExpiresAt: t0(), CreatedAt: t0()},
		{AccountID: "acct-c", Channel: store.Email, Purpose: "identity", Hash: []byte("i"), ExpiresAt: t0(), CreatedAt: t0()},
	}
	for _, c := range others {
		must(t, "PutCode "+string(c.Channel)+"/"+c.Purpose, s.PutCode(ctx, c))
	}
	for _, c := range append(others, c2) {
		got, err := s.ActiveCode(ctx, "acct-c", c.Channel, c.Purpose)
		must(t, "ActiveCode "+string(c.Channel)+"/"+c.Purpose, err)
		if !bytes.Equal(got.Hash, c.Hash) {
			t.Fatalf("ActiveCode %s/%s: got hash %q, want %q", c.Channel, c.Purpose, got.Hash, c.Hash)
		}
	}

	// An expired code is still the active one: the caller checks expiry.
	got, err = s.ActiveCode(ctx, "acct-c", store.Mobile, verify)
	must(t, "ActiveCode expired", err)
	if !got.ExpiresAt.Equal(t0()) {
		t.Fatalf("ActiveCode expired: got expiry %v, want %v", got.ExpiresAt, t0())
	}

	must(t, "UseCode", s.UseCode(ctx, "acct-c", store.Email, verify, t0().Add(2*time.Minute)))
	_, err = s.ActiveCode(ctx, "acct-c", store.Email, verify)
	wantCode(t, "ActiveCode after use", err, errs.NotFound)
	wantCode(t, "UseCode twice", s.UseCode(ctx, "acct-c", store.Email, verify, t0()), errs.Gone)
	_, err = s.CountCodeAttempt(ctx, "acct-c", store.Email, verify)
	wantCode(t, "CountCodeAttempt after use", err, errs.NotFound)
	// The other purpose is untouched.
	_, err = s.ActiveCode(ctx, "acct-c", store.Email, "identity")
	must(t, "ActiveCode other purpose after use", err)

	// A new code after a used one.
	c3 := &store.Code{AccountID: "acct-c", Channel: store.Email, Purpose: verify,
		Hash: []byte("code-3"), ExpiresAt: t0().Add(30 * time.Minute), CreatedAt: t0().Add(3 * time.Minute)}
	must(t, "PutCode after use", s.PutCode(ctx, c3))
	got, err = s.ActiveCode(ctx, "acct-c", store.Email, verify)
	must(t, "ActiveCode after new code", err)
	if !reflect.DeepEqual(got, c3) {
		t.Fatalf("ActiveCode after new code: got %+v, want %+v", got, c3)
	}

	putErrs := []struct {
		name string
		c    *store.Code
		want errs.Code
	}{
		{"bad channel", &store.Code{AccountID: "acct-c", Channel: "fax", Purpose: verify, Hash: []byte("x")}, errs.Invalid},
		{"empty purpose", &store.Code{AccountID: "acct-c", Channel: store.Email, Hash: []byte("x")}, errs.Invalid},
		{"empty hash", &store.Code{AccountID: "acct-c", Channel: store.Email, Purpose: verify}, errs.Invalid},
		{"unknown account", &store.Code{AccountID: "acct-none", Channel: store.Email, Purpose: verify, Hash: []byte("x")}, errs.NotFound},
	}
	for _, tc := range putErrs {
		t.Run("put "+tc.name, func(t *testing.T) {
			wantCode(t, "PutCode", s.PutCode(ctx, tc.c), tc.want)
		})
	}
}

func testResetTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-r")
	mkAccount(t, s, "acct-s")
	rt := func(hash, acct string, ttl time.Duration) *store.ResetToken {
		return &store.ResetToken{Hash: []byte(hash), AccountID: acct, ExpiresAt: t0().Add(ttl), CreatedAt: t0()}
	}
	must(t, "CreateResetToken", s.CreateResetToken(ctx, rt("other", "acct-s", time.Hour)))
	createErrs := []struct {
		name string
		rt   *store.ResetToken
		want errs.Code
	}{
		{"unknown account", rt("reset-x", "acct-none", 0), errs.NotFound},
		{"empty hash", rt("", "acct-r", 0), errs.Invalid},
		{"duplicate", rt("other", "acct-r", 0), errs.Conflict},
	}
	for _, tc := range createErrs {
		t.Run("create "+tc.name, func(t *testing.T) {
			wantCode(t, "CreateResetToken", s.CreateResetToken(ctx, tc.rt), tc.want)
		})
	}
	consume := func(hash string, now time.Time) error {
		_, err := s.ConsumeResetToken(ctx, []byte(hash), now)
		return err
	}
	t.Run("peek", func(t *testing.T) {
		id, err := s.ResetTokenAccount(ctx, []byte("other"), t0())
		if err != nil || id != "acct-s" {
			t.Fatalf("ResetTokenAccount: got %q, %v; want acct-s", id, err)
		}
		_, err = s.ResetTokenAccount(ctx, []byte("other"), t0().Add(time.Hour))
		wantCode(t, "ResetTokenAccount expired", err, errs.Gone)
		_, err = s.ResetTokenAccount(ctx, []byte("none"), t0())
		wantCode(t, "ResetTokenAccount unknown", err, errs.Gone)
	})
	t.Run("a new token revokes the older ones", func(t *testing.T) {
		must(t, "CreateResetToken", s.CreateResetToken(ctx, rt("r1", "acct-r", time.Hour)))
		must(t, "CreateResetToken", s.CreateResetToken(ctx, rt("r2", "acct-r", time.Hour)))
		wantCode(t, "consume r1 after r2 was issued", consume("r1", t0()), errs.Gone)
	})
	t.Run("consuming revokes every token of the account", func(t *testing.T) {
		id, err := s.ConsumeResetToken(ctx, []byte("r2"), t0().Add(time.Minute))
		must(t, "consume r2", err)
		if id != "acct-r" {
			t.Fatalf("ConsumeResetToken: got account %q, want %q", id, "acct-r")
		}
		wantCode(t, "consume r2 again", consume("r2", t0()), errs.Gone)
		wantCode(t, "consume unknown", consume("reset-none", t0()), errs.Gone)
	})
	t.Run("expired", func(t *testing.T) {
		must(t, "CreateResetToken", s.CreateResetToken(ctx, rt("r3", "acct-r", time.Hour)))
		wantCode(t, "consume at expiry", consume("r3", t0().Add(time.Hour)), errs.Gone)
		// A failed attempt on an expired token consumes nothing.
		must(t, "consume r3 before expiry", consume("r3", t0()))
	})
	t.Run("a password change revokes them", func(t *testing.T) {
		must(t, "CreateResetToken", s.CreateResetToken(ctx, rt("r4", "acct-r", time.Hour)))
		must(t, "SetPassword", s.SetPassword(ctx, "acct-r", "new-hash"))
		wantCode(t, "consume r4 after a password change", consume("r4", t0()), errs.Gone)
	})
	t.Run("other accounts keep theirs", func(t *testing.T) {
		id, err := s.ConsumeResetToken(ctx, []byte("other"), t0())
		must(t, "consume the other account's token", err)
		if id != "acct-s" {
			t.Fatalf("ConsumeResetToken: got account %q, want acct-s", id)
		}
	})
}

func testResetTokenConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-r")
	must(t, "CreateResetToken", s.CreateResetToken(ctx, &store.ResetToken{
		Hash: []byte("reset"), AccountID: "acct-r", ExpiresAt: t0().Add(time.Hour), CreatedAt: t0()}))
	const n = 20
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, results[i] = s.ConsumeResetToken(ctx, []byte("reset"), t0())
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range results {
		switch errs.CodeOf(err) {
		case "":
			ok++
		case errs.Gone:
		default:
			t.Fatalf("ConsumeResetToken: got error %v, want nil or Gone", err)
		}
	}
	if ok != 1 {
		t.Fatalf("concurrent ConsumeResetToken: got %d successes, want 1", ok)
	}
}

func testCreateDeviceErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-a")
	mkAccount(t, s, "acct-b")
	closed := newAccount("acct-closed")
	closed.Status = store.StatusClosed
	must(t, "CreateAccount closed", s.CreateAccount(ctx, closed))
	d := mkDevice(t, s, "acct-a", "dev-1", 1)
	if !d.IPv4.Is4() || !d.IPv6.Is6() || d.IPv6.Is4In6() {
		t.Fatalf("CreateDevice: got addresses %v %v, want IPv4 and IPv6", d.IPv4, d.IPv6)
	}
	if !d.UpdatedAt.Equal(d.CreatedAt) {
		t.Fatalf("CreateDevice: got UpdatedAt %v, want CreatedAt %v", d.UpdatedAt, d.CreatedAt)
	}
	got, err := s.Device(ctx, "acct-a", "dev-1")
	must(t, "Device", err)
	if !reflect.DeepEqual(got, d) {
		t.Fatalf("Device: got %+v, want %+v", got, d)
	}

	dev := func(id, account string, key int) *store.Device {
		return &store.Device{ID: id, AccountID: account, SealedName: []byte(id), PublicKey: PublicKey(key), CreatedAt: t0()}
	}
	badKey := dev("dev-bad", "acct-a", 9)
	badKey.PublicKey = "not a key"
	zeroKey := dev("dev-zero", "acct-a", 9)
	zeroKey.PublicKey = base64.StdEncoding.EncodeToString(make([]byte, 32))
	cases := []struct {
		name string
		d    *store.Device
		want errs.Code
	}{
		{"duplicate key same account", dev("dev-2", "acct-a", 1), errs.Conflict},
		{"duplicate key other account", dev("dev-3", "acct-b", 1), errs.Conflict},
		{"duplicate id", dev("dev-1", "acct-b", 2), errs.Conflict},
		{"empty id", dev("", "acct-a", 3), errs.Invalid},
		{"malformed key", badKey, errs.Invalid},
		{"zero key", zeroKey, errs.Invalid},
		{"unknown account", dev("dev-4", "acct-none", 4), errs.NotFound},
		{"closed account", dev("dev-5", "acct-closed", 5), errs.Precondition},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, "CreateDevice", s.CreateDevice(ctx, tc.d, 10), tc.want)
			if tc.d.IPv4.IsValid() {
				t.Fatalf("failed CreateDevice: got IPv4 %v, want it unset", tc.d.IPv4)
			}
		})
	}
	// Failures left nothing behind: one device, one feed entry.
	peers, version, err := Snapshot(ctx, s)
	must(t, "PeerSnapshot", err)
	if len(peers) != 1 {
		t.Fatalf("PeerSnapshot after failures: got %d peers, want 1", len(peers))
	}
	changes, err := s.PeerChanges(ctx, 0, 100)
	must(t, "PeerChanges", err)
	if len(changes) != 1 || changes[0].Version != version {
		t.Fatalf("PeerChanges after failures: got %+v, want one change at version %d", changes, version)
	}
}

func testDeviceLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-l")
	mkAccount(t, s, "acct-m")
	for i := range 3 {
		d := &store.Device{ID: fmt.Sprintf("dev-%d", i), AccountID: "acct-l", PublicKey: PublicKey(i), CreatedAt: t0()}
		must(t, "CreateDevice under limit", s.CreateDevice(ctx, d, 3))
	}
	cases := []struct {
		name    string
		account string
		limit   int
		want    errs.Code
	}{
		{"at limit", "acct-l", 3, errs.Precondition},
		{"lower limit", "acct-l", 1, errs.Precondition},
		{"zero limit", "acct-m", 0, errs.Precondition},
		{"raised limit", "acct-l", 4, ""},
		{"other account unaffected", "acct-m", 1, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &store.Device{ID: fmt.Sprintf("dev-x%d", i), AccountID: tc.account, PublicKey: PublicKey(100 + i), CreatedAt: t0()}
			wantCode(t, "CreateDevice", s.CreateDevice(ctx, d, tc.limit), tc.want)
		})
	}
	// Deleting frees a slot.
	must(t, "DeleteDevice", s.DeleteDevice(ctx, "acct-m", "dev-x4"))
	d := &store.Device{ID: "dev-y", AccountID: "acct-m", PublicKey: PublicKey(200), CreatedAt: t0()}
	must(t, "CreateDevice after delete", s.CreateDevice(ctx, d, 1))
}

func testDeviceOwnership(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-a")
	mkAccount(t, s, "acct-b")
	mkDevice(t, s, "acct-a", "dev-a", 1)
	name := []byte("stolen")
	key := PublicKey(99)
	cases := []struct {
		name string
		fn   func() error
	}{
		{"Device", func() error { _, err := s.Device(ctx, "acct-b", "dev-a"); return err }},
		{"Device unknown", func() error { _, err := s.Device(ctx, "acct-a", "dev-none"); return err }},
		{"UpdateDevice", func() error {
			_, err := s.UpdateDevice(ctx, "acct-b", "dev-a", store.DeviceUpdate{SealedName: name, PublicKey: &key}, t0())
			return err
		}},
		{"UpdateDevice unknown", func() error {
			_, err := s.UpdateDevice(ctx, "acct-a", "dev-none", store.DeviceUpdate{SealedName: name}, t0())
			return err
		}},
		{"DeleteDevice", func() error { return s.DeleteDevice(ctx, "acct-b", "dev-a") }},
		{"DeleteDevice unknown", func() error { return s.DeleteDevice(ctx, "acct-a", "dev-none") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.name, tc.fn(), errs.NotFound)
		})
	}
	ds, err := s.Devices(ctx, "acct-b")
	must(t, "Devices", err)
	if len(ds) != 0 {
		t.Fatalf("Devices of other account: got %d, want 0", len(ds))
	}
	d, err := s.Device(ctx, "acct-a", "dev-a")
	must(t, "Device owner", err)
	if string(d.SealedName) != "sealed name of dev-a" || d.PublicKey != PublicKey(1) {
		t.Fatalf("Device after foreign attempts: got %+v, want it unchanged", d)
	}
}

func testDevicesOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-o")
	// Created out of order in time, plus two in the same second.
	specs := []struct {
		id  string
		sec int
	}{{"dev-c", 30}, {"dev-a", 10}, {"dev-b", 20}, {"dev-b2", 20}}
	for i, sp := range specs {
		d := &store.Device{ID: sp.id, AccountID: "acct-o", PublicKey: PublicKey(i + 1),
			CreatedAt: t0().Add(time.Duration(sp.sec) * time.Second)}
		must(t, "CreateDevice", s.CreateDevice(ctx, d, 10))
	}
	ds, err := s.Devices(ctx, "acct-o")
	must(t, "Devices", err)
	var got []string
	for _, d := range ds {
		got = append(got, d.ID)
	}
	want := []string{"dev-a", "dev-b", "dev-b2", "dev-c"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Devices order: got %v, want %v", got, want)
	}
	ds, err = s.Devices(ctx, "acct-none")
	must(t, "Devices unknown account", err)
	if len(ds) != 0 {
		t.Fatalf("Devices unknown account: got %d, want 0", len(ds))
	}

	// Sub-second input times come back (and are set in d) at second
	// precision, in UTC.
	d := &store.Device{ID: "dev-frac", AccountID: "acct-o", PublicKey: PublicKey(9),
		CreatedAt: t0().Add(1500 * time.Millisecond).In(time.FixedZone("X", 3600))}
	must(t, "CreateDevice", s.CreateDevice(ctx, d, 10))
	gotDev, err := s.Device(ctx, "acct-o", "dev-frac")
	must(t, "Device", err)
	if !reflect.DeepEqual(gotDev, d) || !gotDev.CreatedAt.Equal(t0().Add(time.Second)) {
		t.Fatalf("Device: got %+v, want %+v created at %v", gotDev, d, t0().Add(time.Second))
	}
}

func testUpdateDevice(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-u")
	d := mkDevice(t, s, "acct-u", "dev-u", 1)
	mkDevice(t, s, "acct-u", "dev-v", 2)
	str := func(v string) *string { return &v }
	_, v0, err := Snapshot(ctx, s)
	must(t, "PeerSnapshot", err)

	cases := []struct {
		name        string
		u           store.DeviceUpdate
		now         time.Time
		want        errs.Code
		wantName    string
		wantKey     string
		wantUpdated time.Time
		wantFeed    int // new feed entries
	}{
		{"rename", store.DeviceUpdate{SealedName: []byte("laptop")}, t0().Add(time.Hour), "", "laptop", PublicKey(1), t0().Add(time.Hour), 0},
		{"nothing", store.DeviceUpdate{}, t0().Add(2 * time.Hour), "", "laptop", PublicKey(1), t0().Add(time.Hour), 0},
		{"same key", store.DeviceUpdate{PublicKey: str(PublicKey(1))}, t0().Add(3 * time.Hour), "", "laptop", PublicKey(1), t0().Add(3 * time.Hour), 0},
		{"rotate", store.DeviceUpdate{PublicKey: str(PublicKey(3))}, t0().Add(4 * time.Hour), "", "laptop", PublicKey(3), t0().Add(4 * time.Hour), 2},
		{"rotate and rename", store.DeviceUpdate{SealedName: []byte("phone"), PublicKey: str(PublicKey(4))}, t0().Add(5 * time.Hour), "", "phone", PublicKey(4), t0().Add(5 * time.Hour), 2},
		{"taken key", store.DeviceUpdate{SealedName: []byte("x"), PublicKey: str(PublicKey(2))}, t0().Add(6 * time.Hour), errs.Conflict, "phone", PublicKey(4), t0().Add(5 * time.Hour), 0},
		{"malformed key", store.DeviceUpdate{PublicKey: str("bad")}, t0().Add(6 * time.Hour), errs.Invalid, "phone", PublicKey(4), t0().Add(5 * time.Hour), 0},
		{"old key reusable", store.DeviceUpdate{PublicKey: str(PublicKey(1))}, t0().Add(7 * time.Hour), "", "phone", PublicKey(1), t0().Add(7 * time.Hour), 2},
	}
	version := v0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, err := s.Device(ctx, "acct-u", "dev-u")
			must(t, "Device", err)
			got, err := s.UpdateDevice(ctx, "acct-u", "dev-u", tc.u, tc.now)
			wantCode(t, "UpdateDevice", err, tc.want)
			stored, err2 := s.Device(ctx, "acct-u", "dev-u")
			must(t, "Device", err2)
			if err == nil && !reflect.DeepEqual(got, stored) {
				t.Fatalf("UpdateDevice: returned %+v, stored %+v", got, stored)
			}
			if string(stored.SealedName) != tc.wantName || stored.PublicKey != tc.wantKey || !stored.UpdatedAt.Equal(tc.wantUpdated) {
				t.Fatalf("after UpdateDevice: got name %q key %s updated %v, want %q %s %v",
					stored.SealedName, stored.PublicKey, stored.UpdatedAt, tc.wantName, tc.wantKey, tc.wantUpdated)
			}
			if stored.IPv4 != d.IPv4 || stored.IPv6 != d.IPv6 || !stored.CreatedAt.Equal(d.CreatedAt) {
				t.Fatalf("after UpdateDevice: got %v %v %v, want addresses and creation unchanged (%v %v %v)",
					stored.IPv4, stored.IPv6, stored.CreatedAt, d.IPv4, d.IPv6, d.CreatedAt)
			}
			changes, err := s.PeerChanges(ctx, version, 100)
			must(t, "PeerChanges", err)
			if len(changes) != tc.wantFeed {
				t.Fatalf("feed entries: got %d (%+v), want %d", len(changes), changes, tc.wantFeed)
			}
			if tc.wantFeed == 2 {
				wantChanges := []store.PeerChange{
					{Version: changes[0].Version, Removed: true, Peer: store.Peer{DeviceID: "dev-u", PublicKey: before.PublicKey, IPv4: d.IPv4, IPv6: d.IPv6}},
					{Version: changes[1].Version, Peer: store.Peer{DeviceID: "dev-u", PublicKey: tc.wantKey, IPv4: d.IPv4, IPv6: d.IPv6}},
				}
				if !reflect.DeepEqual(changes, wantChanges) || changes[0].Version <= version || changes[1].Version <= changes[0].Version {
					t.Fatalf("rotation feed: got %+v, want %+v with increasing versions after %d", changes, wantChanges, version)
				}
				version = changes[1].Version
			}
		})
	}
}

// testDeviceDNSBlocking checks that a device keeps the DNS blocking set it
// is created or updated with, that an invalid set is refused, and that a
// change of set leaves the peer feed alone (gateways never learn it).
func testDeviceDNSBlocking(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-b")
	d := &store.Device{ID: "dev-b", AccountID: "acct-b", SealedName: []byte("b"), PublicKey: PublicKey(1), CreatedAt: t0(),
		DNSBlocking: dnsblock.Set(dnsblock.Ads | dnsblock.Malware)}
	must(t, "CreateDevice", s.CreateDevice(ctx, d, 10))
	got, err := s.Device(ctx, "acct-b", "dev-b")
	must(t, "Device", err)
	if got.DNSBlocking != d.DNSBlocking {
		t.Fatalf("Device: got blocking %v, want %v", got.DNSBlocking, d.DNSBlocking)
	}
	bad := &store.Device{ID: "dev-bad", AccountID: "acct-b", SealedName: []byte("x"), PublicKey: PublicKey(2), CreatedAt: t0(), DNSBlocking: 32}
	wantCode(t, "CreateDevice with an invalid set", s.CreateDevice(ctx, bad, 10), errs.Invalid)

	_, v0, err := Snapshot(ctx, s)
	must(t, "PeerSnapshot", err)
	for _, set := range []dnsblock.Set{dnsblock.Set(dnsblock.Trackers), dnsblock.All, 0} {
		u, err := s.UpdateDevice(ctx, "acct-b", "dev-b", store.DeviceUpdate{DNSBlocking: &set}, t0().Add(time.Hour))
		must(t, "UpdateDevice", err)
		stored, err := s.Device(ctx, "acct-b", "dev-b")
		must(t, "Device", err)
		if u.DNSBlocking != set || stored.DNSBlocking != set || !stored.UpdatedAt.Equal(t0().Add(time.Hour)) {
			t.Fatalf("UpdateDevice to %v: returned %v, stored %v updated %v", set, u.DNSBlocking, stored.DNSBlocking, stored.UpdatedAt)
		}
	}
	invalid := dnsblock.Set(200)
	_, err = s.UpdateDevice(ctx, "acct-b", "dev-b", store.DeviceUpdate{DNSBlocking: &invalid}, t0())
	wantCode(t, "UpdateDevice with an invalid set", err, errs.Invalid)
	changes, err := s.PeerChanges(ctx, v0, 100)
	must(t, "PeerChanges", err)
	if len(changes) != 0 {
		t.Fatalf("a change of blocking set wrote to the peer feed: %+v", changes)
	}
}

func testDeleteDevice(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-d")
	d := mkDevice(t, s, "acct-d", "dev-d", 1)
	mkDevice(t, s, "acct-d", "dev-e", 2)
	_, v, err := Snapshot(ctx, s)
	must(t, "PeerSnapshot", err)
	must(t, "DeleteDevice", s.DeleteDevice(ctx, "acct-d", "dev-d"))
	_, err = s.Device(ctx, "acct-d", "dev-d")
	wantCode(t, "Device after delete", err, errs.NotFound)
	wantCode(t, "DeleteDevice twice", s.DeleteDevice(ctx, "acct-d", "dev-d"), errs.NotFound)
	changes, err := s.PeerChanges(ctx, v, 10)
	must(t, "PeerChanges", err)
	want := []store.PeerChange{{Removed: true, Peer: store.Peer{DeviceID: "dev-d"}}}
	if len(changes) == 1 {
		want[0].Version = changes[0].Version
	}
	if !reflect.DeepEqual(changes, want) || changes[0].Version <= v {
		t.Fatalf("PeerChanges after delete: got %+v, want %+v after version %d", changes, want, v)
	}
	// Its addition became a removal naming only the device too; dev-e's
	// stays as it was.
	all, err := s.PeerChanges(ctx, 0, 10)
	must(t, "PeerChanges all", err)
	for _, c := range all {
		if c.PublicKey == d.PublicKey || c.IPv4 == d.IPv4 || c.IPv6 == d.IPv6 {
			t.Fatalf("feed after delete: got %+v, want no entry with dev-d's key or addresses", all)
		}
	}
	if len(all) != 3 || all[0].DeviceID != "dev-d" || !all[0].Removed || all[1].DeviceID != "dev-e" || all[1].Removed {
		t.Fatalf("feed after delete: got %+v, want dev-d's scrubbed addition, dev-e's addition, dev-d's removal", all)
	}
	ds, err := s.Devices(ctx, "acct-d")
	must(t, "Devices", err)
	if len(ds) != 1 || ds[0].ID != "dev-e" {
		t.Fatalf("Devices after delete: got %+v, want only dev-e", ds)
	}
	// The key is free again.
	mkDevice(t, s, "acct-d", "dev-f", 1)
}

func testAddressReuse(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-r")
	a := mkDevice(t, s, "acct-r", "dev-a", 1)
	b := mkDevice(t, s, "acct-r", "dev-b", 2)
	c := mkDevice(t, s, "acct-r", "dev-c", 3)
	addrs := map[netip.Addr]bool{a.IPv4: true, b.IPv4: true, c.IPv4: true, a.IPv6: true, b.IPv6: true, c.IPv6: true}
	if len(addrs) != 6 {
		t.Fatalf("addresses: got %v %v %v, want 6 distinct", a, b, c)
	}

	must(t, "DeleteDevice b", s.DeleteDevice(ctx, "acct-r", "dev-b"))
	d := mkDevice(t, s, "acct-r", "dev-d", 4)
	if d.IPv4 != b.IPv4 || d.IPv6 != b.IPv6 {
		t.Fatalf("reuse: got %v %v, want the freed %v %v", d.IPv4, d.IPv6, b.IPv4, b.IPv6)
	}
	// Lowest freed address first.
	must(t, "DeleteDevice c", s.DeleteDevice(ctx, "acct-r", "dev-c"))
	must(t, "DeleteDevice a", s.DeleteDevice(ctx, "acct-r", "dev-a"))
	e := mkDevice(t, s, "acct-r", "dev-e", 5)
	f := mkDevice(t, s, "acct-r", "dev-f", 6)
	if e.IPv4 != a.IPv4 || f.IPv4 != c.IPv4 || e.IPv6 != a.IPv6 || f.IPv6 != c.IPv6 {
		t.Fatalf("reuse order: got %v, %v, want %v, %v", e.IPv4, f.IPv4, a.IPv4, c.IPv4)
	}
	// Free list empty: a fresh address.
	g := mkDevice(t, s, "acct-r", "dev-g", 7)
	for _, old := range []*store.Device{a, b, c} {
		if g.IPv4 == old.IPv4 || g.IPv6 == old.IPv6 {
			t.Fatalf("fresh allocation: got %v %v, which is in use", g.IPv4, g.IPv6)
		}
	}
}

func testConcurrentCreateDevice(t *testing.T, s store.Store) {
	ctx := t.Context()
	const workers, perWorker = 20, 5
	for i := range 4 {
		mkAccount(t, s, fmt.Sprintf("acct-%d", i))
	}
	errc := make(chan error, workers*perWorker)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for j := range perWorker {
				n := w*perWorker + j
				d := &store.Device{ID: fmt.Sprintf("dev-%d", n), AccountID: fmt.Sprintf("acct-%d", n%4),
					PublicKey: PublicKey(n), CreatedAt: t0()}
				if err := s.CreateDevice(ctx, d, 1000); err != nil {
					errc <- fmt.Errorf("CreateDevice %s: %w", d.ID, err)
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("concurrent: got %v, want nil", err)
	}
	peers, version, err := Snapshot(ctx, s)
	must(t, "PeerSnapshot", err)
	if len(peers) != workers*perWorker {
		t.Fatalf("PeerSnapshot: got %d peers, want %d", len(peers), workers*perWorker)
	}
	seen := map[netip.Addr]string{}
	for _, p := range peers {
		for _, a := range []netip.Addr{p.IPv4, p.IPv6} {
			if other, dup := seen[a]; dup {
				t.Fatalf("address %v given to both %s and %s", a, other, p.DeviceID)
			}
			seen[a] = p.DeviceID
		}
	}
	changes, err := s.PeerChanges(ctx, 0, 1000)
	must(t, "PeerChanges", err)
	if len(changes) != workers*perWorker {
		t.Fatalf("PeerChanges: got %d, want %d", len(changes), workers*perWorker)
	}
	for i := 1; i < len(changes); i++ {
		if changes[i].Version <= changes[i-1].Version {
			t.Fatalf("PeerChanges: version %d after %d, want strictly increasing", changes[i].Version, changes[i-1].Version)
		}
	}
	if last := changes[len(changes)-1].Version; last != version {
		t.Fatalf("last change version: got %d, want snapshot version %d", last, version)
	}
}

func testConcurrentDeviceLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-x")
	const workers, limit = 20, 5
	results := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			d := &store.Device{ID: fmt.Sprintf("dev-%d", i), AccountID: "acct-x", PublicKey: PublicKey(i), CreatedAt: t0()}
			results[i] = s.CreateDevice(ctx, d, limit)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range results {
		switch errs.CodeOf(err) {
		case "":
			ok++
		case errs.Precondition:
		default:
			t.Fatalf("CreateDevice: got %v, want nil or Precondition", err)
		}
	}
	if ok != limit {
		t.Fatalf("concurrent CreateDevice with limit %d: got %d successes, want %d", limit, ok, limit)
	}
	ds, err := s.Devices(ctx, "acct-x")
	must(t, "Devices", err)
	if len(ds) != limit {
		t.Fatalf("Devices: got %d, want %d", len(ds), limit)
	}
}

// peerSet is a set of peers keyed by public key.
type peerSet map[string]store.Peer

func setOf(peers []store.Peer) peerSet {
	s := peerSet{}
	for _, p := range peers {
		s[p.PublicKey] = p
	}
	return s
}

// apply applies changes to s as a gateway would: a removal without a key
// drops the peer with its device ID.
func (s peerSet) apply(changes []store.PeerChange) {
	for _, c := range changes {
		switch {
		case c.Removed && c.PublicKey == "":
			for k, p := range s {
				if p.DeviceID == c.DeviceID {
					delete(s, k)
				}
			}
		case c.Removed:
			delete(s, c.PublicKey)
		default:
			s[c.PublicKey] = c.Peer
		}
	}
}

func testPeerFeed(t *testing.T, s store.Store) {
	ctx := t.Context()
	peers, v0, err := Snapshot(ctx, s)
	must(t, "PeerSnapshot empty", err)
	if len(peers) != 0 {
		t.Fatalf("PeerSnapshot empty: got %d peers, want 0", len(peers))
	}
	changes, err := s.PeerChanges(ctx, v0, 10)
	must(t, "PeerChanges empty", err)
	if len(changes) != 0 {
		t.Fatalf("PeerChanges empty: got %+v, want none", changes)
	}

	mkAccount(t, s, "acct-f")
	d1 := mkDevice(t, s, "acct-f", "dev-1", 1)
	d2 := mkDevice(t, s, "acct-f", "dev-2", 2)
	snap1, v1, err := Snapshot(ctx, s)
	must(t, "PeerSnapshot", err)
	want := peerSet{
		d1.PublicKey: {DeviceID: "dev-1", PublicKey: d1.PublicKey, IPv4: d1.IPv4, IPv6: d1.IPv6},
		d2.PublicKey: {DeviceID: "dev-2", PublicKey: d2.PublicKey, IPv4: d2.IPv4, IPv6: d2.IPv6},
	}
	if got := setOf(snap1); !reflect.DeepEqual(got, want) {
		t.Fatalf("PeerSnapshot: got %+v, want %+v", got, want)
	}

	key := PublicKey(3)
	_, err = s.UpdateDevice(ctx, "acct-f", "dev-1", store.DeviceUpdate{SealedName: []byte("renamed")}, t0())
	must(t, "UpdateDevice rename", err)
	_, err = s.UpdateDevice(ctx, "acct-f", "dev-1", store.DeviceUpdate{PublicKey: &key}, t0())
	must(t, "UpdateDevice rotate", err)
	must(t, "DeleteDevice", s.DeleteDevice(ctx, "acct-f", "dev-2"))
	d4 := mkDevice(t, s, "acct-f", "dev-4", 4)

	all, err := s.PeerChanges(ctx, v0, 100)
	must(t, "PeerChanges all", err)
	type entry struct {
		device  string
		key     string
		removed bool
	}
	var got []entry
	for i, c := range all {
		got = append(got, entry{c.DeviceID, c.PublicKey, c.Removed})
		if i > 0 && c.Version <= all[i-1].Version {
			t.Fatalf("PeerChanges: version %d after %d, want strictly increasing", c.Version, all[i-1].Version)
		}
	}
	// dev-2's removal turned its addition into a removal naming only the
	// device, and appended one.
	wantEntries := []entry{
		{"dev-1", PublicKey(1), false},
		{"dev-2", "", true},
		{"dev-1", PublicKey(1), true},
		{"dev-1", PublicKey(3), false},
		{"dev-2", "", true},
		{"dev-4", PublicKey(4), false},
	}
	if !reflect.DeepEqual(got, wantEntries) {
		t.Fatalf("PeerChanges: got %+v, want %+v", got, wantEntries)
	}
	if all[0].Version <= v0 {
		t.Fatalf("first change version: got %d, want > %d", all[0].Version, v0)
	}
	if all[1].Version != v1 {
		t.Fatalf("snapshot version: got %d, want %d (version of the last change it includes)", v1, all[1].Version)
	}
	for _, r := range []store.PeerChange{all[1], all[4]} {
		if r.IPv4.IsValid() || r.IPv6.IsValid() {
			t.Fatalf("removal of dev-2: got %+v, want no addresses", r)
		}
	}

	// Paging with limit.
	var paged []store.PeerChange
	for since := v0; ; {
		page, err := s.PeerChanges(ctx, since, 2)
		must(t, "PeerChanges page", err)
		if len(page) > 2 {
			t.Fatalf("PeerChanges limit 2: got %d changes", len(page))
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		since = page[len(page)-1].Version
	}
	if !reflect.DeepEqual(paged, all) {
		t.Fatalf("paged changes: got %+v, want %+v", paged, all)
	}

	// Replaying the changes after v1 onto snapshot 1 gives the current set.
	snap2, v2, err := Snapshot(ctx, s)
	must(t, "PeerSnapshot 2", err)
	if v2 != all[len(all)-1].Version {
		t.Fatalf("PeerSnapshot version: got %d, want %d", v2, all[len(all)-1].Version)
	}
	later, err := s.PeerChanges(ctx, v1, 100)
	must(t, "PeerChanges since v1", err)
	replayed := setOf(snap1)
	replayed.apply(later)
	if cur := setOf(snap2); !reflect.DeepEqual(replayed, cur) {
		t.Fatalf("snapshot+changes: got %+v, want %+v", replayed, cur)
	}
	if p, ok := setOf(snap2)[d4.PublicKey]; !ok || p.IPv4 != d4.IPv4 {
		t.Fatalf("PeerSnapshot: got %+v, want dev-4 with %v", snap2, d4.IPv4)
	}
	none, err := s.PeerChanges(ctx, v2, 100)
	must(t, "PeerChanges at head", err)
	if len(none) != 0 {
		t.Fatalf("PeerChanges at head: got %+v, want none", none)
	}
}

func testPeerFeedErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-f")
	mkDevice(t, s, "acct-f", "dev-1", 1)
	_, v, err := Snapshot(ctx, s)
	must(t, "PeerSnapshot", err)
	cases := []struct {
		name  string
		since int64
		limit int
		want  errs.Code
	}{
		{"from start", 0, 10, ""},
		{"at head", v, 10, ""},
		{"beyond head", v + 1, 10, errs.Gone},
		{"negative since", -1, 10, errs.Invalid},
		{"zero limit", 0, 0, errs.Invalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.PeerChanges(ctx, tc.since, tc.limit)
			wantCode(t, "PeerChanges", err, tc.want)
		})
	}
}

// testPeerSnapshotConsistency takes snapshots while devices are created,
// rotated and deleted concurrently, and checks that every snapshot is
// exactly the replay of the feed up to its version.
func testPeerSnapshotConsistency(t *testing.T, s store.Store) {
	ctx := t.Context()
	const workers, rounds = 8, 6
	for w := range workers {
		mkAccount(t, s, fmt.Sprintf("acct-%d", w))
	}
	type snapshot struct {
		peers   []store.Peer
		version int64
	}
	var snaps []snapshot
	done := make(chan struct{})
	readerErr := make(chan error, 1)
	go func() {
		defer close(readerErr)
		for {
			peers, v, err := Snapshot(ctx, s)
			if err != nil {
				readerErr <- err
				return
			}
			snaps = append(snaps, snapshot{peers, v})
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	var wg sync.WaitGroup
	errc := make(chan error, workers*rounds*3)
	for w := range workers {
		wg.Go(func() {
			acct := fmt.Sprintf("acct-%d", w)
			for r := range rounds {
				n := (w*rounds + r) * 2
				d := &store.Device{ID: fmt.Sprintf("dev-%d", n), AccountID: acct, PublicKey: PublicKey(n), CreatedAt: t0()}
				if err := s.CreateDevice(ctx, d, 1000); err != nil {
					errc <- err
					continue
				}
				switch r % 3 {
				case 1:
					k := PublicKey(n + 1)
					if _, err := s.UpdateDevice(ctx, acct, d.ID, store.DeviceUpdate{PublicKey: &k}, t0()); err != nil {
						errc <- err
					}
				case 2:
					if err := s.DeleteDevice(ctx, acct, d.ID); err != nil {
						errc <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(done)
	if err := <-readerErr; err != nil {
		t.Fatalf("PeerSnapshot during writes: %v", err)
	}
	close(errc)
	for err := range errc {
		t.Fatalf("writer: got %v, want nil", err)
	}
	// A deleted device's entries in the feed become removals naming only
	// the device: replaying the feed up to a snapshot's version gives the
	// snapshot without the devices deleted since, and the snapshot with
	// the changes after it (what a gateway applies) gives the current set.
	all, err := s.PeerChanges(ctx, 0, 100000)
	must(t, "PeerChanges", err)
	final, _, err := Snapshot(ctx, s)
	must(t, "PeerSnapshot final", err)
	current := map[string]bool{}
	for _, p := range final {
		current[p.DeviceID] = true
	}
	for _, sn := range snaps {
		replay, caught := peerSet{}, setOf(sn.peers)
		for _, c := range all {
			if c.Version <= sn.version {
				replay.apply([]store.PeerChange{c})
			} else {
				caught.apply([]store.PeerChange{c})
			}
		}
		want := peerSet{}
		for k, p := range setOf(sn.peers) {
			if !deleted(p.DeviceID, workers, rounds) {
				want[k] = p
			}
		}
		if !reflect.DeepEqual(replay, want) {
			t.Fatalf("snapshot at version %d: got replay of feed %+v, want the snapshot without deleted devices %+v", sn.version, replay, want)
		}
		if !reflect.DeepEqual(caught, setOf(final)) {
			t.Fatalf("snapshot at version %d with the later changes: got %+v, want the current set %+v", sn.version, caught, setOf(final))
		}
	}
	t.Logf("checked %d snapshots against %d changes", len(snaps), len(all))
}

// deleted reports whether testPeerSnapshotConsistency deletes device id.
func deleted(id string, workers, rounds int) bool {
	for w := range workers {
		for r := range rounds {
			if r%3 == 2 && id == fmt.Sprintf("dev-%d", (w*rounds+r)*2) {
				return true
			}
		}
	}
	return false
}

func testGateways(t *testing.T, s store.Store) {
	ctx := t.Context()
	gs, err := s.Gateways(ctx)
	must(t, "Gateways empty", err)
	if len(gs) != 0 {
		t.Fatalf("Gateways empty: got %d, want 0", len(gs))
	}
	g1 := &store.Gateway{ID: "gw-1", Region: "eu", Endpoint: "198.18.0.1:51820", EnrollHash: []byte("enroll-1"), CreatedAt: t0().Add(time.Second)}
	g2 := &store.Gateway{ID: "gw-2", Region: "us", Endpoint: "198.18.0.2:51820", EnrollHash: []byte("enroll-2"), CreatedAt: t0()}
	must(t, "CreateGateway 1", s.CreateGateway(ctx, g1))
	must(t, "CreateGateway 2", s.CreateGateway(ctx, g2))
	gs, err = s.Gateways(ctx)
	must(t, "Gateways", err)
	if want := []store.Gateway{*g2, *g1}; !reflect.DeepEqual(gs, want) {
		t.Fatalf("Gateways: got %+v, want %+v (oldest first)", gs, want)
	}

	createErrs := []struct {
		name string
		g    *store.Gateway
		want errs.Code
	}{
		{"duplicate id", &store.Gateway{ID: "gw-1", EnrollHash: []byte("enroll-x"), CreatedAt: t0()}, errs.Conflict},
		{"duplicate enroll hash", &store.Gateway{ID: "gw-x", EnrollHash: []byte("enroll-1"), CreatedAt: t0()}, errs.Conflict},
		{"empty id", &store.Gateway{EnrollHash: []byte("enroll-y"), CreatedAt: t0()}, errs.Invalid},
		{"no enroll hash", &store.Gateway{ID: "gw-y", CreatedAt: t0()}, errs.Invalid},
	}
	for _, tc := range createErrs {
		t.Run("create "+tc.name, func(t *testing.T) {
			wantCode(t, "CreateGateway", s.CreateGateway(ctx, tc.g), tc.want)
		})
	}

	_, err = s.GatewayByCredential(ctx, []byte("cred-1"))
	wantCode(t, "GatewayByCredential before enroll", err, errs.NotFound)

	enrolls := []struct {
		name   string
		token  string
		key    string
		cred   string
		want   errs.Code
		wantID string
	}{
		{"unknown token", "enroll-none", PublicKey(1), "cred-1", errs.Unauthenticated, ""},
		{"empty token", "", PublicKey(1), "cred-1", errs.Unauthenticated, ""},
		{"malformed key", "enroll-1", "bad", "cred-1", errs.Invalid, ""},
		{"empty credential", "enroll-1", PublicKey(1), "", errs.Invalid, ""},
		{"valid", "enroll-1", PublicKey(1), "cred-1", "", "gw-1"},
		{"used token", "enroll-1", PublicKey(5), "cred-5", errs.Unauthenticated, ""},
		{"key of another gateway", "enroll-2", PublicKey(1), "cred-2", errs.Conflict, ""},
		{"credential of another gateway", "enroll-2", PublicKey(2), "cred-1", errs.Conflict, ""},
		{"second gateway", "enroll-2", PublicKey(2), "cred-2", "", "gw-2"},
	}
	for _, tc := range enrolls {
		t.Run("enroll "+tc.name, func(t *testing.T) {
			g, err := s.EnrollGateway(ctx, []byte(tc.token), tc.key, []byte(tc.cred))
			wantCode(t, "EnrollGateway", err, tc.want)
			if err != nil {
				return
			}
			if g.ID != tc.wantID || g.PublicKey != tc.key || !bytes.Equal(g.CredentialHash, []byte(tc.cred)) || g.EnrollHash != nil {
				t.Fatalf("EnrollGateway: got %+v, want %s with key %s, credential %q and no enroll hash",
					g, tc.wantID, tc.key, tc.cred)
			}
			byCred, err := s.GatewayByCredential(ctx, []byte(tc.cred))
			must(t, "GatewayByCredential", err)
			if !reflect.DeepEqual(byCred, g) {
				t.Fatalf("GatewayByCredential: got %+v, want %+v", byCred, g)
			}
		})
	}

	_, err = s.GatewayByCredential(ctx, []byte("cred-none"))
	wantCode(t, "GatewayByCredential unknown", err, errs.NotFound)
	_, err = s.GatewayByCredential(ctx, nil)
	wantCode(t, "GatewayByCredential empty", err, errs.NotFound)

	seen := t0().Add(time.Hour + 500*time.Millisecond)
	must(t, "TouchGateway", s.TouchGateway(ctx, "gw-1", seen))
	g, err := s.GatewayByCredential(ctx, []byte("cred-1"))
	must(t, "GatewayByCredential", err)
	if g.LastSeen == nil || !g.LastSeen.Equal(seen.Truncate(time.Second)) {
		t.Fatalf("LastSeen: got %v, want %v", g.LastSeen, seen.Truncate(time.Second))
	}
	wantCode(t, "TouchGateway unknown", s.TouchGateway(ctx, "gw-none", seen), errs.NotFound)

	// Removing a gateway drops its credential with it.
	gone, err := s.DeleteGateway(ctx, "gw-1")
	must(t, "DeleteGateway", err)
	if gone.ID != "gw-1" || !bytes.Equal(gone.CredentialHash, []byte("cred-1")) {
		t.Fatalf("DeleteGateway: got %+v, want gw-1 as it was", gone)
	}
	_, err = s.GatewayByCredential(ctx, []byte("cred-1"))
	wantCode(t, "GatewayByCredential after delete", err, errs.NotFound)
	_, err = s.DeleteGateway(ctx, "gw-1")
	wantCode(t, "DeleteGateway again", err, errs.NotFound)
	gs, err = s.Gateways(ctx)
	must(t, "Gateways after delete", err)
	if len(gs) != 1 || gs[0].ID != "gw-2" {
		t.Fatalf("Gateways after delete: got %+v, want gw-2 alone", gs)
	}
	if _, err := s.GatewayByCredential(ctx, []byte("cred-2")); err != nil {
		t.Fatalf("the other gateway's credential: %v", err)
	}
}

func testGatewayEnrollConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "CreateGateway", s.CreateGateway(ctx, &store.Gateway{
		ID: "gw", Region: "eu", Endpoint: "198.18.0.1:51820", EnrollHash: []byte("enroll"), CreatedAt: t0()}))
	const n = 20
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, results[i] = s.EnrollGateway(ctx, []byte("enroll"), PublicKey(i+1), []byte(fmt.Sprintf("cred-%d", i)))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range results {
		switch errs.CodeOf(err) {
		case "":
			if winner >= 0 {
				t.Fatalf("EnrollGateway: callers %d and %d both succeeded, want one", winner, i)
			}
			winner = i
		case errs.Unauthenticated:
		default:
			t.Fatalf("EnrollGateway: got %v, want nil or Unauthenticated", err)
		}
	}
	if winner < 0 {
		t.Fatalf("EnrollGateway: got no success, want one")
	}
	g, err := s.GatewayByCredential(ctx, []byte(fmt.Sprintf("cred-%d", winner)))
	must(t, "GatewayByCredential winner", err)
	if g.PublicKey != PublicKey(winner+1) {
		t.Fatalf("enrolled key: got %s, want %s", g.PublicKey, PublicKey(winner+1))
	}
}

// NewAccountID creates an active account with a well-formed random id,
// placeholder sealed fields and distinct blind indexes in s, for tests
// of other packages that need an account row, and returns its id.
func NewAccountID(t *testing.T, s store.Store) string {
	t.Helper()
	id, err := ident.New(rand.Reader, "acc")
	if err != nil {
		t.Fatal(err)
	}
	return mkAccount(t, s, id).ID
}

// testPeerSnapshotStream checks the streaming contract of PeerSnapshot:
// begin first with the version, then each for every device (in no
// particular order), and a callback's error stops the read and comes back
// unwrapped.
func testPeerSnapshotStream(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-s")
	var want []string
	for i := range 5 {
		d := &store.Device{ID: fmt.Sprintf("dev-s%d", i), AccountID: "acct-s", PublicKey: PublicKey(100 + i),
			CreatedAt: t0().Add(time.Duration(5-i) * time.Hour)}
		must(t, "CreateDevice", s.CreateDevice(ctx, d, 10))
		want = append(want, d.ID)
	}
	must(t, "DeleteDevice", s.DeleteDevice(ctx, "acct-s", "dev-s1"))
	want = slices.Delete(want, 1, 2)

	var calls []string
	err := s.PeerSnapshot(ctx, func(v, n int64) error {
		calls = append(calls, fmt.Sprintf("begin %d %d", v, n))
		return nil
	}, func(p store.Peer) error {
		if !p.IPv4.IsValid() || !p.IPv6.IsValid() || p.PublicKey == "" {
			t.Errorf("peer %+v lacks a field", p)
		}
		calls = append(calls, p.DeviceID)
		return nil
	})
	must(t, "PeerSnapshot", err)
	if len(calls) > 0 {
		slices.Sort(calls[1:])
	}
	if wantCalls := append([]string{"begin 6 4"}, want...); !slices.Equal(calls, wantCalls) {
		t.Fatalf("PeerSnapshot calls: got %v, want %v", calls, wantCalls)
	}

	stop := errors.New("stop")
	n := 0
	err = s.PeerSnapshot(ctx, func(int64, int64) error { return nil }, func(store.Peer) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Fatalf("each failing: got %v after %d peers, want the callback's error after 2", err, n)
	}
	err = s.PeerSnapshot(ctx, func(int64, int64) error { return stop }, func(store.Peer) error {
		t.Fatal("each called after begin failed")
		return nil
	})
	if err != stop {
		t.Fatalf("begin failing: got %v, want the callback's error", err)
	}
}
