// Package backoff computes exponential retry delays with jitter.
package backoff

import (
	"encoding/binary"
	"io"
	"time"
)

// Backoff yields exponentially growing delays between Min and Max, each
// randomised by "equal jitter": a delay d is returned as d/2 plus a random
// part of up to d/2. The zero value is not usable; set Min, Max and Rand.
//
// A Backoff is not safe for concurrent use; give each retry loop its own.
type Backoff struct {
	Min  time.Duration // first delay before jitter; must be > 0
	Max  time.Duration // cap on the delay before jitter
	Rand io.Reader     // source of jitter; if reading fails, no jitter is added

	attempt int
}

// Next returns the delay to wait before the next attempt and advances the
// sequence.
func (b *Backoff) Next() time.Duration {
	d := b.Min
	for i := 0; i < b.attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	if b.attempt < 62 {
		b.attempt++
	}
	half := d / 2
	if half <= 0 || b.Rand == nil {
		return d
	}
	var buf [8]byte
	if _, err := io.ReadFull(b.Rand, buf[:]); err != nil {
		return d
	}
	j := time.Duration(binary.LittleEndian.Uint64(buf[:]) % uint64(half))
	return half + j
}

// Reset starts the sequence again from Min, after a success.
func (b *Backoff) Reset() { b.attempt = 0 }
