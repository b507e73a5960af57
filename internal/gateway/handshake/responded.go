package handshake

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// The handshake response, WireGuard message type 2, is 92 bytes: type (4),
// sender index (4), receiver index (4, the initiation's sender index),
// ephemeral key (32), empty (16), mac1 (16), mac2 (16).
const offReceiver = 8

// maxAwaiting bounds the initiations awaiting their response; an
// initiation passed when the table is full displaces the oldest one.
const maxAwaiting = 4096

// awaitTimeout is how long an initiation waits for its response:
// wireguard-go answers at once or never (REKEY_TIMEOUT is 5 s).
const awaitTimeout = 5 * time.Second

// awaiting remembers, by sender index, the static keys of the initiations
// the gate passed, until wireguard-go answers them. It is safe for
// concurrent use.
type awaiting struct {
	n  atomic.Int32 // entries, read without the lock on the send path
	mu sync.Mutex
	m  map[uint32]awaitEntry
	// order is a ring of the entries in insertion order, for eviction.
	order []awaitSlot
	next  int
}

type awaitSlot struct {
	idx uint32
	at  time.Time
}

type awaitEntry struct {
	key wgkey.PublicKey
	at  time.Time
}

func (a *awaiting) init() {
	a.m = make(map[uint32]awaitEntry)
	a.order = make([]awaitSlot, 0, maxAwaiting)
}

// add records that the initiation with sender index idx, from key, was
// passed at now.
func (a *awaiting) add(idx uint32, key wgkey.PublicKey, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	slot := awaitSlot{idx: idx, at: now}
	if len(a.order) < maxAwaiting {
		a.order = append(a.order, slot)
	} else {
		// The oldest slot goes; its entry too, unless the index was
		// passed again since.
		old := a.order[a.next]
		if e, ok := a.m[old.idx]; ok && e.at.Equal(old.at) {
			delete(a.m, old.idx)
		}
		a.order[a.next] = slot
		a.next = (a.next + 1) % maxAwaiting
	}
	a.m[idx] = awaitEntry{key: key, at: now}
	a.n.Store(int32(len(a.m)))
}

// take returns and forgets the key awaiting the response to sender index
// idx, if one does and has not waited longer than awaitTimeout at now.
func (a *awaiting) take(idx uint32, now time.Time) (wgkey.PublicKey, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.m[idx]
	if !ok {
		return wgkey.PublicKey{}, false
	}
	delete(a.m, idx)
	a.n.Store(int32(len(a.m)))
	return e.key, now.Sub(e.at) <= awaitTimeout
}

// Send passes bufs to the inner Bind. With Config.Responded set, it first
// notes every handshake response among them whose initiation the gate
// passed, for report.
func (b *Bind) Send(bufs [][]byte, ep conn.Endpoint) error {
	if b.responses != nil && b.awaiting.n.Load() > 0 {
		for _, buf := range bufs {
			if len(buf) != device.MessageResponseSize || binary.LittleEndian.Uint32(buf) != device.MessageResponseType {
				continue
			}
			key, ok := b.awaiting.take(binary.LittleEndian.Uint32(buf[offReceiver:]), b.cfg.Clock())
			if !ok {
				continue
			}
			select {
			case b.responses <- key:
			default:
				b.respDrop.Add(1)
			}
		}
	}
	return b.Bind.Send(bufs, ep)
}

// report calls Config.Responded for each completed handshake until r is
// closed.
func (b *Bind) report(r *running) {
	for {
		select {
		case <-r.done:
			return
		case key := <-b.responses:
			b.cfg.Responded(key)
		}
	}
}
