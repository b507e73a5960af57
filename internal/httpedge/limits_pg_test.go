package httpedge

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestSharedSlowdowns builds the limiters of two control replicas on one
// PostgreSQL database, as the server does, and checks that failed logins
// through one slow the account down on the other, for user and staff
// logins apart, and that a device that logged in before keeps its own
// budget on both.
func TestSharedSlowdowns(t *testing.T) {
	url := storetest.PostgresURL(t)
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	var ls [2]*Limiters
	for i := range ls {
		s := storetest.OpenPostgresAt(t, url, storetest.DefaultPool())
		var err error
		ls[i], err = NewSharedLimiters(DefaultLimits(), sharedOn(s), clock, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	a, b := ls[0], ls[1]
	// The owner logs in once through B, which makes a device token.
	att, err := b.UserLogin.Begin("Alice@Example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	device := att.Succeeded()
	// A stranger fails DefaultSlowFree+1 times through A.
	for i := range DefaultSlowFree + 1 {
		if _, err := a.UserLogin.Begin("alice@example.com", ""); err != nil {
			t.Fatalf("failure %d through A: %v", i+1, err)
		}
	}
	_, err = b.UserLogin.Begin("alice@example.com", "")
	if !errs.Is(err, errs.RateLimited) || RetryAfterOf(err) != DefaultSlowBase {
		t.Fatalf("a new device on B after %d failures on A: got %v (retry after %v), want RateLimited for %v",
			DefaultSlowFree+1, err, RetryAfterOf(err), DefaultSlowBase)
	}
	if _, err := a.StaffLogin.Begin("alice@example.com", ""); err != nil {
		t.Errorf("staff login of the same address slowed down by user logins: %v", err)
	}
	for i, l := range ls {
		if _, err := l.UserLogin.Begin("alice@example.com", device); err != nil {
			t.Errorf("the owner's device on replica %d: %v", i, err)
		}
	}
}

// sharedOn returns where NewSharedLimiters keeps the budgets of replicas
// on s, with the secrets every replica derives alike.
func sharedOn(s *sqlstore.Store) Shared {
	return Shared{Spender: s, Keeper: s, Secret: bytes.Repeat([]byte{3}, 32), DeviceKey: bytes.Repeat([]byte{4}, 32),
		Logger: slog.New(slog.DiscardHandler)}
}
