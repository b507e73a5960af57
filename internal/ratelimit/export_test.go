package ratelimit

// heldKeys returns a copy of every key digest the Limiter holds, for tests
// that check no raw key is stored.
func (l *Limiter) heldKeys() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([][]byte, 0, len(l.entries))
	for d := range l.entries {
		out = append(out, append([]byte(nil), d[:]...))
	}
	return out
}

// heldKeys returns a copy of every key digest the Backoff holds, for tests
// that check no raw key is stored.
func (b *Backoff) heldKeys() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([][]byte, 0, len(b.entries))
	for d := range b.entries {
		out = append(out, append([]byte(nil), d[:]...))
	}
	return out
}
