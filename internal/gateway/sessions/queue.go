package sessions

import (
	"time"

	"github.com/nitronet/nitronet/internal/gwproto"
)

type ivKey struct {
	device string
	start  time.Time
}

func keyOf(iv gwproto.Interval) ivKey { return ivKey{iv.DeviceID, iv.Start.UTC()} }

// Queue holds intervals waiting to be reported, in RAM only, in arrival
// order. Intervals with the same device and start coalesce: the newer one
// replaces the older in place, which matches the server's idempotent
// (device, start) semantics. When the queue is full the oldest entry is
// dropped and counted.
//
// A Queue is not safe for concurrent use.
type Queue struct {
	max     int
	items   []gwproto.Interval
	dropped uint64
}

// NewQueue returns a Queue holding at most max intervals (at least 1).
func NewQueue(max int) *Queue {
	if max < 1 {
		max = 1
	}
	return &Queue{max: max}
}

// Len returns the number of queued intervals.
func (q *Queue) Len() int { return len(q.items) }

// Dropped returns how many intervals were dropped because the queue was full.
func (q *Queue) Dropped() uint64 { return q.dropped }

func (q *Queue) index(k ivKey) int {
	for i, it := range q.items {
		if keyOf(it) == k {
			return i
		}
	}
	return -1
}

// Add queues ivs, each replacing a queued interval with the same device and
// start.
func (q *Queue) Add(ivs ...gwproto.Interval) {
	for _, iv := range ivs {
		if i := q.index(keyOf(iv)); i >= 0 {
			q.items[i] = iv
			continue
		}
		if len(q.items) >= q.max {
			q.items = q.items[1:]
			q.dropped++
		}
		q.items = append(q.items, iv)
	}
}

// Take removes and returns up to n of the oldest intervals.
func (q *Queue) Take(n int) []gwproto.Interval {
	if n > len(q.items) {
		n = len(q.items)
	}
	batch := append([]gwproto.Interval(nil), q.items[:n]...)
	q.items = q.items[n:]
	return batch
}

// Requeue puts back a batch from Take whose report failed, ahead of newer
// entries. An interval whose (device, start) was queued again meanwhile is
// skipped, because the queued one is newer. If that overflows the queue, the
// oldest entries are dropped and counted.
func (q *Queue) Requeue(batch []gwproto.Interval) {
	var front []gwproto.Interval
	for _, iv := range batch {
		if q.index(keyOf(iv)) < 0 {
			front = append(front, iv)
		}
	}
	q.items = append(front, q.items...)
	if over := len(q.items) - q.max; over > 0 {
		q.items = q.items[over:]
		q.dropped += uint64(over)
	}
}
