package userspace

import (
	"context"
	"net/netip"
	"os"
	"sync"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// tunDevice is a tun.Device whose other side is a gVisor channel endpoint.
// Packets wireguard-go decrypts are written into the stack; packets the
// stack sends are read by wireguard-go for encryption.
type tunDevice struct {
	ep       *channel.Endpoint
	mtu      int
	policy   *destPolicy
	events   chan tun.Event
	ctx      context.Context
	cancel   context.CancelFunc
	closeNet func() error
	once     sync.Once
}

func newTUNDevice(ep *channel.Endpoint, mtu int, policy *destPolicy, closeNet func() error) *tunDevice {
	ctx, cancel := context.WithCancel(context.Background())
	d := &tunDevice{
		ep:       ep,
		mtu:      mtu,
		policy:   policy,
		events:   make(chan tun.Event, 1),
		ctx:      ctx,
		cancel:   cancel,
		closeNet: closeNet,
	}
	d.events <- tun.EventUp
	return d
}

func (d *tunDevice) File() *os.File           { return nil }
func (d *tunDevice) Name() (string, error)    { return "nitronet-userspace", nil }
func (d *tunDevice) MTU() (int, error)        { return d.mtu, nil }
func (d *tunDevice) Events() <-chan tun.Event { return d.events }
func (d *tunDevice) BatchSize() int           { return 16 }

// Close closes the whole Network.
func (d *tunDevice) Close() error { return d.closeNet() }

// close stops Read and closes the event channel; called by Network.Close.
func (d *tunDevice) close() {
	d.once.Do(func() {
		d.cancel()
		close(d.events)
	})
}

// Read blocks for the first outbound packet, then takes any further queued
// ones without blocking, up to len(bufs).
func (d *tunDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	pkt := d.ep.ReadContext(d.ctx)
	if pkt == nil {
		return 0, os.ErrClosed
	}
	n := 0
	for {
		if size := copyPacket(bufs[n][offset:], pkt); size > 0 {
			sizes[n] = size
			n++
		}
		pkt.DecRef()
		if n == len(bufs) {
			return n, nil
		}
		if pkt = d.ep.Read(); pkt == nil {
			if n == 0 {
				// Every packet was oversized; block again.
				if pkt = d.ep.ReadContext(d.ctx); pkt == nil {
					return 0, os.ErrClosed
				}
				continue
			}
			return n, nil
		}
	}
}

// copyPacket copies pkt into buf and returns its size, or 0 if it does not
// fit.
func copyPacket(buf []byte, pkt *stack.PacketBuffer) int {
	if pkt.Size() > len(buf) {
		return 0
	}
	n := 0
	for _, s := range pkt.AsSlices() {
		n += copy(buf[n:], s)
	}
	return n
}

// Write injects client packets into the stack. Packets to other clients and
// ICMP echo requests to anything but the gateway are dropped here, before
// the stack sees them.
func (d *tunDevice) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		pkt := b[offset:]
		if len(pkt) == 0 {
			continue
		}
		var proto = header.IPv4ProtocolNumber
		switch pkt[0] >> 4 {
		case 4:
		case 6:
			proto = header.IPv6ProtocolNumber
		default:
			continue
		}
		if !d.admit(pkt) {
			continue
		}
		pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
		d.ep.InjectInbound(proto, pkb)
		pkb.DecRef()
	}
	return len(bufs), nil
}

// admit applies the packet-level isolation rules to one client packet.
func (d *tunDevice) admit(pkt []byte) bool {
	var (
		dst      netip.Addr
		l4       byte
		l4off    int
		echoType byte
	)
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < header.IPv4MinimumSize {
			return false
		}
		dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		l4 = pkt[9]
		l4off = int(pkt[0]&0x0f) * 4
		if l4 != byte(header.ICMPv4ProtocolNumber) {
			l4 = 0
		}
		echoType = byte(header.ICMPv4Echo)
	case 6:
		if len(pkt) < header.IPv6MinimumSize {
			return false
		}
		dst = netip.AddrFrom16([16]byte(pkt[24:40]))
		l4 = pkt[6]
		l4off = header.IPv6MinimumSize
		if l4 != byte(header.ICMPv6ProtocolNumber) {
			l4 = 0
		}
		echoType = byte(header.ICMPv6EchoRequest)
	}
	gw := d.policy.isGateway(dst)
	if !gw && d.policy.inPools(dst) {
		return false // client-to-client
	}
	if l4 != 0 && !gw && len(pkt) > l4off && pkt[l4off] == echoType {
		return false // we do not forward ICMP; do not fake replies either
	}
	return true
}
