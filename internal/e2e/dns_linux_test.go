package e2e

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/nitronet/nitronet/internal/netns"
)

// dnsResponder is a tiny authoritative DNS server over UDP for the
// gateways' --dns-upstream: it answers A queries for one name with one
// address, AAAA queries for that name with no records, and everything else
// with NXDOMAIN. It stands in for the resolvers of "the internet" so that
// no query leaves the test's namespaces. It is safe for concurrent use.
type dnsResponder struct {
	pc   net.PacketConn
	name string // lower case, fully qualified
	addr netip.Addr

	mu      sync.Mutex
	sources []netip.Addr // source of each query for name
}

// startDNS serves DNS on the UDP address listen inside ns until the test
// ends, answering name (without the final dot) with addr.
func startDNS(t *testing.T, ns *netns.NS, listen, name string, addr netip.Addr) *dnsResponder {
	t.Helper()
	pc, err := ns.ListenPacket("udp", listen)
	if err != nil {
		t.Fatalf("DNS responder: %v", err)
	}
	d := &dnsResponder{pc: pc, name: strings.ToLower(name) + ".", addr: addr}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.serve()
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return d
}

// querySources returns the source address of every query for the name so
// far.
func (d *dnsResponder) querySources() []netip.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]netip.Addr(nil), d.sources...)
}

func (d *dnsResponder) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		resp, ok := d.answer(buf[:n], from)
		if ok {
			_, _ = d.pc.WriteTo(resp, from)
		}
	}
}

// answer builds the response to the query msg, or reports false for a
// message that is not a well-formed query.
func (d *dnsResponder) answer(msg []byte, from net.Addr) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	match := strings.ToLower(q.Name.String()) == d.name
	if match {
		if ua, ok := from.(*net.UDPAddr); ok {
			a, _ := netip.AddrFromSlice(ua.IP)
			d.mu.Lock()
			d.sources = append(d.sources, a.Unmap())
			d.mu.Unlock()
		}
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RCode: dnsmessage.RCodeSuccess}
	if !match {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	if match && q.Type == dnsmessage.TypeA && q.Class == dnsmessage.ClassINET {
		rr := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60}
		if b.AResource(rr, dnsmessage.AResource{A: d.addr.As4()}) != nil {
			return nil, false
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
