package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// BenchmarkPeerFeedNotify measures what the peer-feed notification
// (migration 00021's trigger, with another store LISTENing, as a second
// replica does) costs device registration on PostgreSQL. Rounds of 200
// registrations (store.CreateDevice, one caller) alternate between the
// trigger enabled and disabled, so that both see the same load; it
// reports each mode's median rate over the rounds and their ratio.
func BenchmarkPeerFeedNotify(b *testing.B) {
	url := storetest.PostgresURL(b)
	db := storetest.PostgresDB(b, url)
	s := storetest.OpenPostgresAt(b, url, storetest.DefaultPool())
	other := storetest.OpenPostgresAt(b, url, storetest.DefaultPool())
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- other.ListenPeerFeed(ctx, func() {}, func() { listening <- struct{}{} })
	}()
	b.Cleanup(func() { cancel(); <-done })
	<-listening
	const accounts, perRound = 1000, 200
	sqlstore.PreloadWith(b, s, accounts, 0, nil)
	n := 0
	round := func(notify bool) float64 {
		verb := "DISABLE"
		if notify {
			verb = "ENABLE"
		}
		if _, err := db.ExecContext(b.Context(), "ALTER TABLE peer_feed "+verb+" TRIGGER peer_feed_notify"); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for range perRound {
			d := &store.Device{ID: fmt.Sprintf("bench-%d", n), AccountID: fmt.Sprintf("acct-%d", (n*7919)%accounts),
				SealedName: make([]byte, 41), PublicKey: benchKey(n), CreatedAt: time.Now()}
			if err := s.CreateDevice(b.Context(), d, 1000); err != nil {
				b.Fatalf("CreateDevice: %v", err)
			}
			n++
		}
		return perRound / time.Since(start).Seconds()
	}
	on, off := pairedRounds(b, round)
	b.ReportMetric(on, "notify-devices/s")
	b.ReportMetric(off, "silent-devices/s")
	b.ReportMetric(on/off, "ratio")
}

// BenchmarkAttemptSlowdown measures what sharing a login's slow-down costs
// on PostgreSQL, against its peer, the shared per-address budget every
// login already spends (SpendBudget): rounds of 500 calls over 1,000 keys
// (one caller) alternate between the two, each call counted and written
// (no delay, an ample budget), and it reports each one's median time per
// call over the rounds and their ratio.
func BenchmarkAttemptSlowdown(b *testing.B) {
	s := storetest.Postgres(b, storetest.DefaultPool())
	const keys, perRound = 1000, 500
	digests := make([][]byte, keys)
	for i := range digests {
		d := sha256.Sum256(fmt.Appendf(nil, "user:acct:%d@example.com", i))
		digests[i] = d[:]
	}
	delays := []time.Duration{0}
	n := 0
	round := func(slow bool) float64 {
		start := time.Now()
		for range perRound {
			d, now := digests[n%keys], time.Now()
			var err error
			if slow {
				_, err = s.AttemptSlowdown(b.Context(), "user-login", d, now, delays, time.Hour)
			} else {
				_, err = s.SpendBudget(b.Context(), "login", d, now, time.Millisecond, 1_000_000)
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		return float64(time.Since(start).Microseconds()) / perRound
	}
	slow, budget := pairedRounds(b, round)
	b.ReportMetric(slow, "slowdown-µs/call")
	b.ReportMetric(budget, "budget-µs/call")
	b.ReportMetric(slow/budget, "ratio")
}

// pairedRounds runs round(true) and round(false) once each per b.Loop
// iteration, alternating which goes first, so that the two see the same
// machine, and returns the median of what each returned.
func pairedRounds(b *testing.B, round func(bool) float64) (yes, no float64) {
	got := map[bool][]float64{}
	for i := 0; b.Loop(); i++ {
		for _, v := range []bool{i%2 == 0, i%2 != 0} {
			got[v] = append(got[v], round(v))
		}
	}
	median := func(v []float64) float64 {
		slices.Sort(v)
		return v[len(v)/2]
	}
	return median(got[true]), median(got[false])
}
