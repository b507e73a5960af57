// Package peerfeed turns the store's peer change log into a long-poll
// stream for gateways.
//
// Writers call Notify after a committed change; waiting gateways wake at
// once. A periodic re-check of the store covers changes made by another
// process (another control replica on PostgreSQL, or `nitronet admin`).
package peerfeed

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/store"
)

// MaxBatch bounds how many changes one poll answer carries.
const MaxBatch = 1000

// Hub wakes long-polling gateways when the peer feed changes. The zero
// value is not usable; call New. A Hub is safe for concurrent use.
type Hub struct {
	store   store.Store
	recheck time.Duration
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on each Notify
}

// Config holds a Hub's dependencies.
type Config struct {
	Store store.Store // required
	// Recheck is how often a waiting poll re-checks the store, for
	// changes made through another replica; 0 means one second.
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
	return &Hub{store: cfg.Store, recheck: recheck, changed: make(chan struct{})}, nil
}

// Notify wakes every waiting poll. Call it after a peer change commits.
func (h *Hub) Notify() {
	h.mu.Lock()
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

func (h *Hub) wakeup() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// Poll answers a gateway's poll with cursor since. since <= 0, or a cursor
// the store no longer retains, gives a full snapshot. Otherwise Poll
// returns as soon as there are changes after since, or after wait with an
// empty change list and the same version. It returns ctx's error if ctx
// ends first.
//
// While the feed is still empty (version 0) a snapshot poll is held like a
// change poll: otherwise a gateway whose cursor is 0 would be answered at
// once, again and again.
func (h *Hub) Poll(ctx context.Context, since int64, wait time.Duration) (*gwproto.PeerUpdate, error) {
	if since <= 0 {
		return h.waitFor(ctx, wait, func(ctx context.Context) (*gwproto.PeerUpdate, bool, error) {
			u, err := h.snapshot(ctx)
			return u, err == nil && u.Version > 0, err
		})
	}
	return h.waitFor(ctx, wait, func(ctx context.Context) (*gwproto.PeerUpdate, bool, error) {
		changes, err := h.store.PeerChanges(ctx, since, MaxBatch)
		if errs.Is(err, errs.Gone) {
			u, err := h.snapshot(ctx)
			return u, true, err
		}
		if err != nil || len(changes) == 0 {
			return &gwproto.PeerUpdate{Version: since}, false, err
		}
		u := &gwproto.PeerUpdate{Version: changes[len(changes)-1].Version}
		for _, c := range changes {
			u.Changes = append(u.Changes, gwproto.Change{Peer: wirePeer(c.Peer), Removed: c.Removed})
		}
		return u, true, nil
	})
}

// waitFor runs check now and again on every Notify and every re-check
// tick, until check reports an answer ready (or fails), ctx ends, or wait
// passes; after wait it returns check's last, not-ready answer.
func (h *Hub) waitFor(ctx context.Context, wait time.Duration, check func(context.Context) (*gwproto.PeerUpdate, bool, error)) (*gwproto.PeerUpdate, error) {
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	tick := time.NewTicker(h.recheck)
	defer tick.Stop()
	for {
		wake := h.wakeup()
		u, ready, err := check(ctx)
		if err != nil {
			return nil, err
		}
		if ready {
			return u, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout.C:
			return u, nil
		case <-wake:
		case <-tick.C:
		}
	}
}

func (h *Hub) snapshot(ctx context.Context) (*gwproto.PeerUpdate, error) {
	peers, version, err := h.store.PeerSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	u := &gwproto.PeerUpdate{Version: version, Full: true, Peers: make([]gwproto.Peer, 0, len(peers))}
	for _, p := range peers {
		u.Peers = append(u.Peers, wirePeer(p))
	}
	return u, nil
}

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
