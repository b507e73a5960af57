package sessions

import (
	"time"

	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// RejectAfterTime is WireGuard's lifetime of a session key: without a new
// handshake within this time, no data can flow, so the session is over.
const RejectAfterTime = 180 * time.Second

type open struct {
	deviceID string
	start    time.Time // first handshake, untruncated
	last     time.Time // latest handshake seen
}

// Tracker is the session state machine. It is fed handshake observations
// and peer removals with the current time, and returns the intervals to
// report: an open interval (End nil) when a session starts and a closed one
// when it ends. Its state lives in memory only.
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	open map[wgkey.PublicKey]*open
	// ended holds the last handshake of recently ended sessions, so that a
	// stale observation of the same handshake cannot reopen them.
	ended map[wgkey.PublicKey]time.Time
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{open: map[wgkey.PublicKey]*open{}, ended: map[wgkey.PublicKey]time.Time{}}
}

// Open returns the number of open sessions, which is the live device count.
func (t *Tracker) Open() int { return len(t.open) }

// Observe processes one poll of the device at time now. hs lists every peer
// currently on the device; deviceID maps a key to its device ID, returning
// false for a key the gateway does not know (which is then ignored).
//
// A handshake newer than the last one seen for a key, and no older than
// RejectAfterTime, starts a session if none is open. An open session whose
// last handshake is older than RejectAfterTime ends at that handshake plus
// RejectAfterTime, also when the new handshake came more than
// RejectAfterTime after it (the new handshake then starts a new session).
// An open session whose peer is absent from hs ends now, or at its expiry if
// that is earlier. A session that has lasted gwproto.MaxSession is reported
// as a closed interval of that length followed by an open one.
func (t *Tracker) Observe(now time.Time, hs []Handshake, deviceID func(wgkey.PublicKey) (string, bool)) []gwproto.Interval {
	out := t.split(now)
	seen := make(map[wgkey.PublicKey]bool, len(hs))
	for _, h := range hs {
		seen[h.Key] = true
		if s, ok := t.open[h.Key]; ok {
			if h.Last.Sub(s.last) > RejectAfterTime {
				// The session expired between two polls (a delayed poll,
				// a paused host) and a new one began: end the old one at
				// its expiry, then treat h as a first handshake below.
				out = append(out, t.end(h.Key, s.last.Add(RejectAfterTime)))
			} else {
				if h.Last.After(s.last) {
					s.last = h.Last
				}
				if now.Sub(s.last) > RejectAfterTime {
					out = append(out, t.end(h.Key, s.last.Add(RejectAfterTime)))
				}
				continue
			}
		}
		if h.Last.IsZero() || now.Sub(h.Last) > RejectAfterTime {
			continue
		}
		if prev, ok := t.ended[h.Key]; ok && !h.Last.After(prev) {
			continue
		}
		id, ok := deviceID(h.Key)
		if !ok {
			continue
		}
		delete(t.ended, h.Key)
		s := &open{deviceID: id, start: h.Last, last: h.Last}
		t.open[h.Key] = s
		out = append(out, gwproto.Interval{DeviceID: id, Start: minute(h.Last)})
	}
	for k, s := range t.open {
		if !seen[k] {
			out = append(out, t.end(k, earlier(now, s.last.Add(RejectAfterTime))))
		}
	}
	for k, last := range t.ended {
		if now.Sub(last) > RejectAfterTime {
			delete(t.ended, k)
		}
	}
	return out
}

// Removed ends the session of key, if one is open, because the peer was
// removed from the device at time now. It returns the closed interval, or
// nil if no session was open.
func (t *Tracker) Removed(now time.Time, key wgkey.PublicKey) []gwproto.Interval {
	s, ok := t.open[key]
	if !ok {
		return nil
	}
	return []gwproto.Interval{t.end(key, earlier(now, s.last.Add(RejectAfterTime)))}
}

// CloseAll ends every open session at now (or at its expiry, if earlier),
// for a gateway shutdown.
func (t *Tracker) CloseAll(now time.Time) []gwproto.Interval {
	var out []gwproto.Interval
	for k, s := range t.open {
		out = append(out, t.end(k, earlier(now, s.last.Add(RejectAfterTime))))
	}
	return out
}

// split cuts every open session that has lasted gwproto.MaxSession at
// that length: it reports the closed interval and opens the next one at
// the cut, so that no interval is longer than the server accepts. A
// session whose last handshake expired before the cut is left to end as
// usual.
func (t *Tracker) split(now time.Time) []gwproto.Interval {
	var out []gwproto.Interval
	for _, s := range t.open {
		for {
			cut := minute(s.start).Add(gwproto.MaxSession)
			if now.Before(cut) || s.last.Add(RejectAfterTime).Before(cut) {
				break
			}
			end := cut
			out = append(out, gwproto.Interval{DeviceID: s.deviceID, Start: minute(s.start), End: &end},
				gwproto.Interval{DeviceID: s.deviceID, Start: cut})
			s.start = cut
		}
	}
	return out
}

func (t *Tracker) end(key wgkey.PublicKey, at time.Time) gwproto.Interval {
	s := t.open[key]
	delete(t.open, key)
	t.ended[key] = s.last
	end := minute(at)
	start := minute(s.start)
	if end.Before(start) {
		end = start
	}
	return gwproto.Interval{DeviceID: s.deviceID, Start: start, End: &end}
}

func minute(t time.Time) time.Time { return t.UTC().Truncate(time.Minute) }

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
