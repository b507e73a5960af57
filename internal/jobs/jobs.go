// Package jobs runs the control server's periodic housekeeping (retention
// sweeps, lapsed-gag notices) on a schedule.
//
// A job reports only counts; it must never return or log personal data.
package jobs

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Job is one periodic task. Run returns how many items it handled.
type Job struct {
	Name  string
	Every time.Duration
	Run   func(ctx context.Context) (int64, error)
}

// Ticker returns a channel that fires every d and a function that stops it.
type Ticker func(d time.Duration) (<-chan time.Time, func())

// RealTicker is a Ticker backed by time.NewTicker.
func RealTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Runner runs jobs until its context ends. Each job runs once at start and
// then at every tick; runs of one job never overlap.
type Runner struct {
	jobs   []Job
	log    *slog.Logger
	ticker Ticker
}

// New returns a Runner for jobs using ticker (RealTicker outside tests).
func New(log *slog.Logger, ticker Ticker, jobs ...Job) *Runner {
	return &Runner{jobs: jobs, log: log, ticker: ticker}
}

// Run blocks until ctx ends, running every job on its schedule.
func (r *Runner) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, j := range r.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, j)
		}()
	}
	wg.Wait()
}

func (r *Runner) loop(ctx context.Context, j Job) {
	tick, stop := r.ticker(j.Every)
	defer stop()
	for {
		r.once(ctx, j)
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

func (r *Runner) once(ctx context.Context, j Job) {
	n, err := j.Run(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("job failed", "job", j.Name, "err", err)
		}
		return
	}
	r.log.Info("job done", "job", j.Name, "count", n)
}
