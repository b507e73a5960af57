// Package peerfeed turns the store's peer change log into a long-poll
// stream for gateways, and streams full snapshots from the store's cursor
// into a gwproto.SnapshotWriter without holding them in memory.
//
// Writers call Notify after a committed change; waiting gateways wake at
// once. Changes made by another process (another control replica on
// PostgreSQL, or `nitronet admin`) wake them through the store's
// notifications where the server listens for them (on PostgreSQL, see
// sqlstore.Store.ListenPeerFeed), and otherwise at a periodic re-check of
// the store.
//
// A removed device's entries in the feed name only the device, with no
// key or addresses (see store.PeerChange): gateways that say they drop a
// peer by its device ID get them as changes; to any other gateway, a poll
// whose changes hold one is answered with a full snapshot instead.
package peerfeed

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// MaxBatch bounds how many changes one poll answer carries.
const MaxBatch = 1000

// MaxSnapshots bounds how many snapshots one Hub streams at once. Each
// holds a read transaction (a connection) open until the gateway has
// taken the last row, so a crowd of gateways starting together must not
// take every connection; the others wait their turn.
const MaxSnapshots = 2

// Hub wakes long-polling gateways when the peer feed changes. The zero
// value is not usable; call New. A Hub is safe for concurrent use.
type Hub struct {
	store   store.Store
	recheck time.Duration
	slots   chan struct{} // one element per snapshot being streamed
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on each Notify
	waiting atomic.Int64  // polls waiting for a change
}

// Config holds a Hub's dependencies.
type Config struct {
	Store store.Store // required
	// Recheck is how often a waiting poll re-checks the store, for
	// changes made by another process that Notify does not hear of; 0
	// means one second.
	Recheck time.Duration
}

// New returns a Hub reading from cfg.Store.
func New(cfg Config) (*Hub, error) {
	if cfg.Store == nil {
		return nil, errors.New("peerfeed: missing dependency")
	}
	recheck := cfg.Recheck
	if recheck <= 0 {
		recheck = time.Second
	}
	return &Hub{store: cfg.Store, recheck: recheck, changed: make(chan struct{}),
		slots: make(chan struct{}, MaxSnapshots)}, nil
}

// Notify wakes every waiting poll. Call it after a peer change commits.
func (h *Hub) Notify() {
	h.mu.Lock()
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// Waiting reports how many polls are waiting for a change (or their
// wait's end) at this moment: a count only.
func (h *Hub) Waiting() int64 { return h.waiting.Load() }

func (h *Hub) wakeup() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// errEmpty stops a snapshot of the still-empty feed before anything is
// written, so that the poll can be held.
var errEmpty = errors.New("peer feed is empty")

// Poll answers a gateway's poll with cursor since.
//
// since <= 0, or a cursor the store no longer retains, gives a full
// snapshot: Poll streams it into snap as rows are read from the store
// (Begin, Peer for each peer, End) and returns an update with Full set,
// the snapshot's Version and no peers. Otherwise Poll returns, without
// touching snap, as soon as there are changes after since (at most
// MaxBatch), or after wait with an empty change list and the same version.
// byDevice says the gateway drops a peer named only by its device ID; if
// it does not, changes holding such a removal are answered with a full
// snapshot.
//
// While the feed is still empty (version 0) a snapshot poll is held like a
// change poll, and after wait an empty snapshot at version 0 is streamed:
// otherwise a gateway whose cursor is 0 would be answered at once, again
// and again.
//
// Poll returns ctx's error if ctx ends first. An error from snap, or a
// store error once Begin was called, is returned as it is; the caller
// cannot tell the gateway by status any more, and must end the answer
// without completing it (a binary snapshot then lacks its end record).
// Rows whose key or addresses are not valid peer records are left out of
// a snapshot.
func (h *Hub) Poll(ctx context.Context, since int64, wait time.Duration, byDevice bool, snap gwproto.SnapshotWriter) (*gwproto.PeerUpdate, error) {
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	tick := time.NewTicker(h.recheck)
	defer tick.Stop()
	for {
		wake := h.wakeup()
		if since > 0 {
			changes, err := h.store.PeerChanges(ctx, since, MaxBatch)
			switch {
			case errs.Is(err, errs.Gone):
				return h.snapshot(ctx, snap, false)
			case err != nil:
				return nil, err
			case len(changes) > 0 && !byDevice && slices.ContainsFunc(changes, byDeviceOnly):
				return h.snapshot(ctx, snap, false)
			case len(changes) > 0:
				return changeUpdate(changes), nil
			}
		} else {
			u, err := h.snapshot(ctx, snap, true)
			if !errors.Is(err, errEmpty) {
				return u, err
			}
		}
		switch h.wait(ctx, timeout.C, wake, tick.C) {
		case cancelled:
			return nil, ctx.Err()
		case timedOut:
			if since > 0 {
				return &gwproto.PeerUpdate{Version: since}, nil
			}
			return h.snapshot(ctx, snap, false)
		}
	}
}

// How a poll's wait ended.
const (
	woken     = iota // by Notify or the re-check: look again
	timedOut         // the poll's wait is over
	cancelled        // the poll's context ended
)

// wait blocks until ctx ends, timeout fires, wake is closed or tick fires,
// counted in Waiting meanwhile, and says which.
func (h *Hub) wait(ctx context.Context, timeout <-chan time.Time, wake <-chan struct{}, tick <-chan time.Time) int {
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	select {
	case <-ctx.Done():
		return cancelled
	case <-timeout:
		return timedOut
	case <-wake:
	case <-tick:
	}
	return woken
}

func changeUpdate(changes []store.PeerChange) *gwproto.PeerUpdate {
	u := &gwproto.PeerUpdate{Version: changes[len(changes)-1].Version,
		Changes: make([]gwproto.Change, 0, len(changes))}
	for _, c := range changes {
		u.Changes = append(u.Changes, gwproto.Change{Peer: wirePeer(c.Peer), Removed: c.Removed})
	}
	return u
}

// snapshot streams a full snapshot into w, under the limit on concurrent
// snapshots. With holdEmpty it returns errEmpty, having written nothing,
// if the feed's version is 0.
func (h *Hub) snapshot(ctx context.Context, w gwproto.SnapshotWriter, holdEmpty bool) (*gwproto.PeerUpdate, error) {
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var version, count int64
	err := h.store.PeerSnapshot(ctx, func(v, n int64) error {
		if holdEmpty && v == 0 {
			return errEmpty
		}
		version = v
		return w.Begin(v, n)
	}, func(p store.Peer) error {
		r, ok := record(p)
		if !ok {
			return nil
		}
		count++
		return w.Peer(r)
	})
	if err != nil {
		return nil, err
	}
	if err := w.End(count); err != nil {
		return nil, err
	}
	return &gwproto.PeerUpdate{Version: version, Full: true}, nil
}

// record converts a stored peer to a snapshot record, reporting false if
// the row cannot be one (a gateway would refuse it anyway).
func record(p store.Peer) (gwproto.PeerRecord, bool) {
	k, err := wgkey.ParsePublic(p.PublicKey)
	if err != nil {
		return gwproto.PeerRecord{}, false
	}
	r := gwproto.PeerRecord{DeviceID: p.DeviceID, Key: k, IPv4: p.IPv4, IPv6: p.IPv6}
	return r, r.Check() == nil
}

// byDeviceOnly reports whether c is a removal that names only its device.
func byDeviceOnly(c store.PeerChange) bool { return c.Removed && c.PublicKey == "" }

func wirePeer(p store.Peer) gwproto.Peer {
	w := gwproto.Peer{DeviceID: p.DeviceID, PublicKey: p.PublicKey}
	if p.IPv4.IsValid() {
		w.Addresses = append(w.Addresses, p.IPv4.String()+"/32")
	}
	if p.IPv6.IsValid() {
		w.Addresses = append(w.Addresses, p.IPv6.String()+"/128")
	}
	return w
}
