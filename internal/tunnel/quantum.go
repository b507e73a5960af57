package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/ephemeral"
	"github.com/nitronet/nitronet/internal/wgconf"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// DialContext opens a connection through the tunnel: on its netstack in
// userspace mode, and on a socket bound to the TUN interface in TUN mode,
// so that it can never leave by another route.
func (t *Tunnel) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if t.dial == nil {
		return nil, errors.New("tunnel: no dialer")
	}
	return t.dial(ctx, network, address)
}

// SwitchKey makes the tunnel use key, with pre-shared key psk (all zero
// for none), towards its gateway (the first peer) from now on. The device drops its current
// session keys, so its next packet starts a handshake under key and psk;
// packets of the old session are not accepted any more. It returns the time
// of the switch, before which no handshake counts as one under the new key.
// Nothing is written anywhere.
func (t *Tunnel) SwitchKey(key wgkey.PrivateKey, psk ephemeral.PSK) (time.Time, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return time.Time{}, errors.New("tunnel: closed")
	}
	var b strings.Builder
	b.WriteString("private_key=" + key.Hex() + "\n")
	b.WriteString("public_key=" + t.peer.Hex() + "\n")
	b.WriteString("update_only=true\n")
	b.WriteString("preshared_key=" + psk.Hex() + "\n")
	at := time.Now()
	if err := t.dev.IpcSet(b.String()); err != nil {
		return time.Time{}, errors.New("tunnel: switching key failed") // the error may quote the keys
	}
	return at, nil
}

// QuantumOptions configures MakeQuantumResistant.
type QuantumOptions struct {
	// Service is the gateway's ephemeral-peer service, HOST:PORT; ""
	// means port ephemeral.Port on the tunnel's first IPv4 DNS server (the
	// gateway's own tunnel address in a Nitronet configuration).
	Service string
	// Timeout bounds the exchange and the first handshake under the new
	// key; 0 means 15 seconds.
	Timeout time.Duration
}

// ErrNoHandshake is wrapped by MakeQuantumResistant's error when the
// gateway did not answer a handshake, under the long-term key (before the
// exchange) or under the ephemeral key (after the switch).
var ErrNoHandshake = errors.New("the gateway did not answer a handshake")

// MakeQuantumResistant runs the ephemeral-peer exchange (ephemeral.Exchange)
// through the tunnel with its gateway, switches the tunnel to the
// ephemeral key and pre-shared key (SwitchKey) and waits for the first
// handshake under them. Afterwards Status reports QuantumResistant.
//
// It first waits for a handshake under the long-term key. On a tunnel that
// is quantum-resistant already (a gateway that restarted or forgot an idle
// ephemeral key no longer answers it) it first switches back to the
// long-term key without a pre-shared key. With Options.QuantumResistant the
// tunnel carries nothing but the exchange until the switch succeeded
// (during a renewal too); without it, traffic sent before the switch
// travels under the classical handshake alone.
//
// A gateway without the service gives an error wrapping
// ephemeral.ErrUnsupported, and one that refuses a *ephemeral.RefusedError;
// the tunnel then stays on its long-term key, still held (see
// AllowClassical). A gateway that answers no handshake gives an error
// wrapping ErrNoHandshake. After an error the tunnel carries nothing, or
// without the hold only classical traffic: the caller should close it.
func (t *Tunnel) MakeQuantumResistant(ctx context.Context, o QuantumOptions) error {
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	service := o.Service
	if service == "" {
		a, ok := t.serviceAddr()
		if !ok {
			return errors.New("tunnel: the configuration names no gateway tunnel address (DNS) to ask for an ephemeral peer")
		}
		service = net.JoinHostPort(a.String(), strconv.Itoa(ephemeral.Port))
	}
	t.mu.Lock()
	again := t.quantum
	t.quantum = false
	t.mu.Unlock()
	var err error
	// Nothing but the exchange while the tunnel is not switched: held
	// from Up, and held again before going back to the long-term key.
	since := time.Time{}
	if again {
		if t.hold != nil {
			if err := t.setAllowed(t.hold); err != nil {
				return err
			}
		}
		if since, err = t.SwitchKey(t.longTerm, ephemeral.PSK{}); err != nil {
			return err
		}
	}
	if err := t.awaitHandshake(ctx, since, service, "under the long-term key"); err != nil {
		return err
	}
	res, err := ephemeral.Exchange(ctx, ephemeral.ClientConfig{
		Dial: t.DialContext, Address: service, Device: t.device, Gateway: t.peer,
	})
	if err != nil {
		return err
	}
	if since, err = t.SwitchKey(res.Key, res.PSK); err != nil {
		return err
	}
	if err := t.awaitHandshake(ctx, since, service, "under the ephemeral key"); err != nil {
		return err
	}
	if t.hold != nil {
		if err := t.setAllowed(t.allowed); err != nil {
			return err
		}
	}
	t.mu.Lock()
	t.quantum = true
	t.mu.Unlock()
	t.log.Info("tunnel quantum-resistant: switched to an ephemeral key with an ML-KEM pre-shared key")
	return nil
}

// awaitHandshake waits until the tunnel has a handshake later than since,
// poking the gateway with a datagram to service's address (which it drops)
// so that the device starts one. under says which key, for the error.
func (t *Tunnel) awaitHandshake(ctx context.Context, since time.Time, service, under string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastPoke time.Time
	for {
		if hs := t.Status().LastHandshake; hs.After(since) {
			return nil
		}
		if time.Since(lastPoke) >= time.Second {
			lastPoke = time.Now()
			t.poke(ctx, service)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tunnel: %w %s", ErrNoHandshake, under)
		case <-tick.C:
		}
	}
}

// poke sends a one-byte UDP datagram through the tunnel to service's host.
func (t *Tunnel) poke(ctx context.Context, service string) {
	c, err := t.DialContext(ctx, "udp", service)
	if err != nil {
		return
	}
	_, _ = c.Write([]byte{0})
	c.Close()
}

// serviceAddr returns the tunnel's first IPv4 DNS server, else its first.
func (t *Tunnel) serviceAddr() (netip.Addr, bool) { return serviceAddr(t.dns) }

func serviceAddr(dns []netip.Addr) (netip.Addr, bool) {
	for _, a := range dns {
		if a.Is4() {
			return a, true
		}
	}
	if len(dns) > 0 {
		return dns[0], true
	}
	return netip.Addr{}, false
}

// holdPrefixes returns the allowed IPs of c's peer while a quantum-resistant
// tunnel waits for its switch: the gateway's tunnel address only.
func holdPrefixes(c wgconf.Config) ([]netip.Prefix, error) {
	if len(c.Peers) != 1 {
		return nil, errors.New("tunnel: a quantum-resistant tunnel needs exactly one peer")
	}
	a, ok := serviceAddr(c.Interface.DNS)
	if !ok {
		return nil, errors.New("tunnel: the configuration names no gateway tunnel address (DNS) to ask for an ephemeral peer")
	}
	return []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, nil
}

// setAllowed gives the gateway peer the allowed IPs ps on the device.
func (t *Tunnel) setAllowed(ps []netip.Prefix) error {
	var b strings.Builder
	b.WriteString("public_key=" + t.peer.Hex() + "\nupdate_only=true\nreplace_allowed_ips=true\n")
	for _, p := range ps {
		b.WriteString("allowed_ip=" + p.String() + "\n")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errors.New("tunnel: closed")
	}
	if err := t.dev.IpcSet(b.String()); err != nil {
		return fmt.Errorf("tunnel: set allowed IPs: %w", err)
	}
	return nil
}

// AllowClassical releases the hold of Options.QuantumResistant without a
// switch: the tunnel carries everything under the classical handshake. It
// is for a user who allowed a downgrade.
func (t *Tunnel) AllowClassical() error {
	if t.hold == nil {
		return nil
	}
	return t.setAllowed(t.allowed)
}
