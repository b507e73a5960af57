package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/jobs"
)

func TestRunner(t *testing.T) {
	ticks := map[string]chan time.Time{"a": make(chan time.Time), "b": make(chan time.Time)}
	runs := make(chan string, 10)
	mk := func(name string, err error) jobs.Job {
		return jobs.Job{Name: name, Every: time.Hour, Run: func(context.Context) (int64, error) {
			runs <- name
			return 1, err
		}}
	}
	byEvery := map[time.Duration]string{}
	ticker := func(d time.Duration) (<-chan time.Time, func()) {
		return ticks[byEvery[d]], func() {}
	}
	ja, jb := mk("a", nil), mk("b", errors.New("boom"))
	jb.Every = 2 * time.Hour
	byEvery[time.Hour], byEvery[2*time.Hour] = "a", "b"
	r := jobs.New(slog.New(slog.NewTextHandler(io.Discard, nil)), ticker, ja, jb)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()

	// Both run once at start, a failing job keeps its schedule, and a tick
	// runs only its own job.
	got := map[string]int{}
	for i := 0; i < 2; i++ {
		got[<-runs]++
	}
	if got["a"] != 1 || got["b"] != 1 {
		t.Fatalf("at start: got %v, want each job once", got)
	}
	ticks["b"] <- time.Now()
	if n := <-runs; n != "b" {
		t.Fatalf("after b's tick: got %s, want b", n)
	}
	ticks["a"] <- time.Now()
	if n := <-runs; n != "a" {
		t.Fatalf("after a's tick: got %s, want a", n)
	}
	cancel()
	<-done
	select {
	case n := <-runs:
		t.Fatalf("job %s ran after the context ended", n)
	default:
	}
}
