package sqlstore_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// BenchmarkEraseAccountScrub measures EraseAccount on each engine with 100,000
// accounts and devices already present (NITRONET_BENCH_ACCOUNTS sets
// another number), each erased account having two devices, two session
// intervals, a login token, an inbox message and two requests. It erases
// accounts alternately with and without the scrub that follows the
// transaction (SQLite: checkpoint and truncation of the WAL; PostgreSQL:
// VACUUM of the tables the erasure changed), and reports the time of each
// and their ratio.
func BenchmarkEraseAccountScrub(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("NITRONET_BENCH_ACCOUNTS")); err == nil && v > 0 {
		n = v
	}
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := be.OpenSQL(b, storetest.DefaultPool())
			start := time.Now()
			sqlstore.Preload(b, s, n, n)
			b.Logf("preloaded %d accounts and devices in %v", n, time.Since(start).Round(time.Millisecond))
			var with, without time.Duration
			i := 0
			for b.Loop() {
				for _, scrub := range []bool{true, false} {
					b.StopTimer()
					acct, req := eraseFixture(b, s, i)
					i++
					s.SetScrub(scrub)
					b.StartTimer()
					t0 := time.Now()
					if _, err := s.EraseAccount(b.Context(), store.Erasure{RequestID: req, AccountID: acct, At: time.Now()}); err != nil {
						b.Fatal(err)
					}
					if scrub {
						with += time.Since(t0)
					} else {
						without += time.Since(t0)
					}
				}
			}
			s.SetScrub(true)
			iters := float64(i / 2)
			b.ReportMetric(with.Seconds()*1000/iters, "ms/erasure")
			b.ReportMetric(without.Seconds()*1000/iters, "ms/erasure-unscrubbed")
			b.ReportMetric(with.Seconds()/without.Seconds(), "scrubbed/unscrubbed")
		})
	}
}

// eraseFixture creates account i to erase and its verified erasure
// request, and returns their ids.
func eraseFixture(b *testing.B, s store.Store, i int) (string, string) {
	b.Helper()
	ctx := b.Context()
	acct, req := fmt.Sprintf("acc_bench_%d", i), fmt.Sprintf("prq_bench_%d", i)
	blob := func(what string) []byte { return []byte(fmt.Sprintf("%s-%s-%040d", what, acct, i)) }
	now := time.Now()
	steps := []error{
		s.CreateAccount(ctx, &store.Account{ID: acct, EmailSealed: blob("e"), MobileSealed: blob("m"), WrappedKey: blob("k"),
			EmailIndex: blob("ei"), MobileIndex: blob("mi"), PasswordHash: "h", Status: store.StatusActive, CreatedAt: now}),
		s.CreateToken(ctx, &store.Token{Hash: blob("t"), AccountID: acct, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}),
		s.PostMessage(ctx, &store.Message{ID: "msg_" + acct, AccountID: acct, Kind: "privacy-denied", Sealed: blob("msg"), CreatedAt: now}),
		s.CreatePrivacyRequest(ctx, &store.PrivacyRequest{ID: req + "_a", AccountID: acct, Type: store.RequestAccess,
			Status: store.RequestCompleted, Sealed: blob("ra"), ReceivedAt: now, DueAt: now}),
		s.CreatePrivacyRequest(ctx, &store.PrivacyRequest{ID: req, AccountID: acct, Type: store.RequestErasure,
			Status: store.RequestVerified, Sealed: blob("re"), ReceivedAt: now, DueAt: now}),
	}
	for d := range 2 {
		steps = append(steps, s.CreateDevice(ctx, &store.Device{ID: fmt.Sprintf("dev_%s_%d", acct, d), AccountID: acct,
			SealedName: blob("n"), PublicKey: storetest.PublicKey(10_000_000 + 2*i + d), CreatedAt: now}, 5))
	}
	start := now.Truncate(time.Minute).Add(-time.Hour)
	_, err := s.RecordIntervals(ctx, "eu", []store.Interval{
		{DeviceID: fmt.Sprintf("dev_%s_0", acct), Start: start}, {DeviceID: fmt.Sprintf("dev_%s_1", acct), Start: start}})
	steps = append(steps, err)
	for _, err := range steps {
		if err != nil {
			b.Fatal(err)
		}
	}
	return acct, req
}
