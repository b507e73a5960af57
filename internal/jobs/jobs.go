// Package jobs runs the control server's periodic housekeeping (retention
// sweeps, peer-feed pruning, lapsed-gag notices) on a schedule.
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

// Runner runs jobs until its context ends. Each job runs once shortly
// after start and then every Every; runs of one job never overlap.
type Runner struct {
	jobs []Job
	log  *slog.Logger
}

// New returns a Runner for jobs.
func New(log *slog.Logger, jobs ...Job) *Runner { return &Runner{jobs: jobs, log: log} }

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
	first := time.NewTimer(5 * time.Second)
	defer first.Stop()
	select {
	case <-ctx.Done():
		return
	case <-first.C:
	}
	tick := time.NewTicker(j.Every)
	defer tick.Stop()
	for {
		r.once(ctx, j)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (r *Runner) once(ctx context.Context, j Job) {
	start := time.Now()
	n, err := j.Run(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("job failed", "job", j.Name, "err", err)
		}
		return
	}
	r.log.Info("job done", "job", j.Name, "count", n, "duration_ms", time.Since(start).Milliseconds())
}
