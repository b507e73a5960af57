package dnsfwd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// answerAddr is what the fake upstream answers for every A question.
var answerAddr = netip.MustParseAddr("192.0.2.53")

// upstream is a fake resolver on 127.0.0.1, UDP and TCP on the same port.
type upstream struct {
	addr string
	// truncUDP makes UDP answers empty with the TC bit set.
	truncUDP bool
	// spoofFirst makes the first UDP reply to each query carry a wrong ID.
	spoofFirst bool
	// silent makes the upstream read queries and never answer.
	silent bool
	// seen, if not nil, receives a value for each query, UDP or TCP.
	seen chan struct{}

	udpQueries, tcpQueries atomic.Int64
}

// startUpstream starts u on 127.0.0.1; everything stops at test end.
func startUpstream(t *testing.T, u *upstream) *upstream {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for i := 0; ; i++ {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if i == 20 {
			t.Fatalf("no free UDP+TCP port pair: %v", err)
		}
	}
	u.addr = pc.LocalAddr().String()
	var wg sync.WaitGroup
	t.Cleanup(func() {
		pc.Close()
		ln.Close()
		wg.Wait()
	})
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, maxMsg)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			u.udpQueries.Add(1)
			u.notify()
			if u.silent {
				continue
			}
			ans := answer(t, buf[:n], u.truncUDP)
			if u.spoofFirst {
				bad := append([]byte(nil), ans...)
				bad[0] ^= 0xff
				pc.WriteTo(bad, from)
			}
			pc.WriteTo(ans, from)
		}
	}()
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, maxMsg)
				for {
					q, err := readMsg(c, buf)
					if err != nil {
						return
					}
					u.tcpQueries.Add(1)
					u.notify()
					if u.silent {
						continue
					}
					if writeMsg(c, answer(t, q, false)) != nil {
						return
					}
				}
			}()
		}
	}()
	return u
}

func (u *upstream) notify() {
	if u.seen != nil {
		u.seen <- struct{}{}
	}
}

// answer builds the response to query: one A record, or none and TC set if
// trunc.
func answer(t *testing.T, query []byte, trunc bool) []byte {
	var m dnsmessage.Message
	if err := m.Unpack(query); err != nil || len(m.Questions) != 1 {
		t.Errorf("upstream got an unparsable query: %v", err)
		return nil
	}
	m.Header.Response = true
	m.Header.RecursionAvailable = true
	m.Header.Truncated = trunc
	if !trunc {
		m.Answers = []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: m.Questions[0].Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
			Body:   &dnsmessage.AResource{A: answerAddr.As4()},
		}}
	}
	out, err := m.Pack()
	if err != nil {
		t.Errorf("pack answer: %v", err)
	}
	return out
}

// query builds an A query for name with the given ID.
func query(t *testing.T, id uint16, name string) []byte {
	t.Helper()
	m := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deadPort returns a 127.0.0.1 address where nothing listens (UDP or TCP).
func deadPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// result is a parsed response as the tests check it.
type result struct {
	id      uint16
	rcode   dnsmessage.RCode
	trunc   bool
	answers []string
	qname   string
}

func parse(t *testing.T, b []byte) result {
	t.Helper()
	var m dnsmessage.Message
	if err := m.Unpack(b); err != nil {
		t.Fatalf("unparsable response: %v", err)
	}
	if !m.Header.Response {
		t.Fatalf("response bit clear")
	}
	r := result{id: m.Header.ID, rcode: m.Header.RCode, trunc: m.Header.Truncated}
	if len(m.Questions) == 1 {
		r.qname = m.Questions[0].Name.String()
	}
	for _, a := range m.Answers {
		if ar, ok := a.Body.(*dnsmessage.AResource); ok {
			r.answers = append(r.answers, netip.AddrFrom4(ar.A).String())
		}
	}
	return r
}

// serve starts f on fresh 127.0.0.1 sockets; they stop at test end, and the
// test fails if a Serve call does not return nil.
func serve(t *testing.T, f *Forwarder) (udpAddr, tcpAddr string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { errs <- f.ServeUDP(ctx, pc) }()
	go func() { errs <- f.ServeTCP(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("Serve after cancel: got %v, want nil", err)
			}
		}
	})
	return pc.LocalAddr().String(), ln.Addr().String()
}

func newForwarder(t *testing.T, cfg Config) *Forwarder {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return f
}

// askUDP sends q from a fresh socket and returns the reply, or nil if none
// arrives within wait.
func askUDP(t *testing.T, addr string, q []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write(q); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, maxMsg)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func TestUDP(t *testing.T) {
	tests := []struct {
		name      string
		upstreams func(t *testing.T) []string
		query     func(t *testing.T) []byte
		want      *result // nil: no reply
		failures  uint64
	}{
		{
			name:      "answered",
			upstreams: func(t *testing.T) []string { return []string{startUpstream(t, &upstream{}).addr} },
			want:      &result{id: 7, answers: []string{answerAddr.String()}, qname: "a.test."},
		},
		{
			name:      "truncated answer relayed as is",
			upstreams: func(t *testing.T) []string { return []string{startUpstream(t, &upstream{truncUDP: true}).addr} },
			want:      &result{id: 7, trunc: true, qname: "a.test."},
		},
		{
			name:      "spoofed reply ignored",
			upstreams: func(t *testing.T) []string { return []string{startUpstream(t, &upstream{spoofFirst: true}).addr} },
			want:      &result{id: 7, answers: []string{answerAddr.String()}, qname: "a.test."},
		},
		{
			name: "first upstream down, second answers",
			upstreams: func(t *testing.T) []string {
				return []string{deadPort(t), startUpstream(t, &upstream{}).addr}
			},
			want: &result{id: 7, answers: []string{answerAddr.String()}, qname: "a.test."},
		},
		{
			name:      "all upstreams down: SERVFAIL",
			upstreams: func(t *testing.T) []string { return []string{deadPort(t), deadPort(t)} },
			want:      &result{id: 7, rcode: dnsmessage.RCodeServerFailure, qname: "a.test."},
			failures:  1,
		},
		{
			name:      "upstream silent: SERVFAIL after timeout",
			upstreams: func(t *testing.T) []string { return []string{startUpstream(t, &upstream{silent: true}).addr} },
			want:      &result{id: 7, rcode: dnsmessage.RCodeServerFailure, qname: "a.test."},
			failures:  1,
		},
		{
			name:      "response bit set: ignored",
			upstreams: func(t *testing.T) []string { return []string{startUpstream(t, &upstream{}).addr} },
			query: func(t *testing.T) []byte {
				q := query(t, 7, "a.test.")
				q[2] |= 0x80
				return q
			},
		},
		{
			name:      "shorter than a header: ignored",
			upstreams: func(t *testing.T) []string { return []string{startUpstream(t, &upstream{}).addr} },
			query:     func(t *testing.T) []byte { return []byte{0, 7, 1, 0} },
		},
		{
			name:      "compressed question, upstream down: dropped",
			upstreams: func(t *testing.T) []string { return []string{deadPort(t)} },
			query: func(t *testing.T) []byte {
				return []byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}
			},
			failures: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newForwarder(t, Config{Upstreams: tt.upstreams(t), Timeout: 300 * time.Millisecond})
			addr, _ := serve(t, f)
			q := query(t, 7, "a.test.")
			if tt.query != nil {
				q = tt.query(t)
			}
			wait := 3 * time.Second
			if tt.want == nil {
				wait = time.Second // proving an absence
			}
			got := askUDP(t, addr, q, wait)
			switch {
			case tt.want == nil && got != nil:
				t.Fatalf("got a %d-byte reply, want none", len(got))
			case tt.want != nil && got == nil:
				t.Fatalf("got no reply, want %+v", *tt.want)
			case tt.want != nil:
				if r := parse(t, got); !equal(r, *tt.want) {
					t.Errorf("got %+v, want %+v", r, *tt.want)
				}
			}
			if got := f.Failures(); got != tt.failures {
				t.Errorf("Failures: got %d, want %d", got, tt.failures)
			}
		})
	}
}

func equal(a, b result) bool {
	return a.id == b.id && a.rcode == b.rcode && a.trunc == b.trunc && a.qname == b.qname &&
		strings.Join(a.answers, ",") == strings.Join(b.answers, ",")
}

func TestTCP(t *testing.T) {
	tests := []struct {
		name    string
		up      *upstream // nil: upstream down
		queries int       // pipelined on one connection
		want    result
		wantUDP int64 // queries the upstream saw over UDP
		wantTCP int64 // and over TCP
	}{
		{
			name:    "answered over UDP upstream",
			up:      &upstream{},
			queries: 1,
			want:    result{answers: []string{answerAddr.String()}, qname: "b.test."},
			wantUDP: 1,
		},
		{
			name:    "pipelined queries answered in order",
			up:      &upstream{},
			queries: 3,
			want:    result{answers: []string{answerAddr.String()}, qname: "b.test."},
			wantUDP: 3,
		},
		{
			name:    "truncated: TCP fallback gives the full answer",
			up:      &upstream{truncUDP: true},
			queries: 1,
			want:    result{answers: []string{answerAddr.String()}, qname: "b.test."},
			wantUDP: 1,
			wantTCP: 1,
		},
		{
			name:    "upstream down: SERVFAIL",
			queries: 2,
			want:    result{rcode: dnsmessage.RCodeServerFailure, qname: "b.test."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := deadPort(t)
			if tt.up != nil {
				up = startUpstream(t, tt.up).addr
			}
			f := newForwarder(t, Config{Upstreams: []string{up}})
			_, addr := serve(t, f)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			for i := range tt.queries {
				if err := writeMsg(c, query(t, uint16(100+i), "b.test.")); err != nil {
					t.Fatal(err)
				}
			}
			buf := make([]byte, maxMsg)
			for i := range tt.queries {
				ans, err := readMsg(c, buf)
				if err != nil {
					t.Fatalf("answer %d: %v", i, err)
				}
				want := tt.want
				want.id = uint16(100 + i)
				if got := parse(t, ans); !equal(got, want) {
					t.Errorf("answer %d: got %+v, want %+v", i, got, want)
				}
			}
			if tt.up != nil {
				if got := tt.up.udpQueries.Load(); got != tt.wantUDP {
					t.Errorf("upstream UDP queries: got %d, want %d", got, tt.wantUDP)
				}
				if got := tt.up.tcpQueries.Load(); got != tt.wantTCP {
					t.Errorf("upstream TCP queries: got %d, want %d", got, tt.wantTCP)
				}
			}
		})
	}
}

// TestTCPClosesConnection checks the cases where the forwarder hangs up.
func TestTCPClosesConnection(t *testing.T) {
	tests := []struct {
		name string
		send []byte
		cfg  Config
	}{
		{"length below a header", []byte{0, 5, 1, 2, 3, 4, 5}, Config{}},
		{"response instead of query", append([]byte{0, 12}, 0, 1, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0), Config{}},
		{"idle", nil, Config{IdleTimeout: 50 * time.Millisecond}},
		{"half a message, then idle", []byte{0, 40, 1, 2, 3}, Config{IdleTimeout: 50 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Upstreams = []string{startUpstream(t, &upstream{}).addr}
			_, addr := serve(t, newForwarder(t, tt.cfg))
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			n, err := c.Read(make([]byte, 64))
			if err != io.EOF && !isReset(err) {
				t.Errorf("read: got %d bytes, err %v; want the connection closed", n, err)
			}
		})
	}
}

func isReset(err error) bool {
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func TestMaxConns(t *testing.T) {
	f := newForwarder(t, Config{Upstreams: []string{startUpstream(t, &upstream{}).addr}, MaxConns: 1})
	_, addr := serve(t, f)
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	first.SetDeadline(time.Now().Add(5 * time.Second))
	// An answered query proves the first connection holds the only slot.
	if err := writeMsg(first, query(t, 1, "c.test.")); err != nil {
		t.Fatal(err)
	}
	if _, err := readMsg(first, make([]byte, maxMsg)); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
		t.Errorf("second connection: got err %v, want it closed", err)
	}
	if got := f.Failures(); got != 1 {
		t.Errorf("Failures: got %d, want 1", got)
	}
}

// TestServeReturnsOnCancel checks that cancelling ctx ends both Serve calls
// with nil while a client connection and a query are in flight, and that
// the sockets are closed.
func TestServeReturnsOnCancel(t *testing.T) {
	up := startUpstream(t, &upstream{silent: true, seen: make(chan struct{}, 2)})
	f := newForwarder(t, Config{Upstreams: []string{up.addr}, Timeout: time.Minute})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- f.ServeUDP(ctx, pc) }()
	go func() { errs <- f.ServeTCP(ctx, ln) }()

	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	c.Write(query(t, 1, "d.test."))
	writeMsg(tc, query(t, 2, "d.test."))
	// Wait until both queries are stuck at the silent upstream.
	for i := range 2 {
		select {
		case <-up.seen:
		case <-time.After(5 * time.Second):
			t.Fatalf("upstream saw %d queries, want 2", i)
		}
	}
	cancel()
	for range 2 {
		select {
		case err := <-errs:
			if err != nil {
				t.Errorf("Serve: got %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return within 5s of cancel")
		}
	}
	if _, _, err := pc.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("packet conn after Serve: got %v, want net.ErrClosed", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener after Serve: got %v, want net.ErrClosed", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		in      []string
		want    []string
		wantErr bool
	}{
		{in: []string{"192.0.2.1"}, want: []string{"192.0.2.1:53"}},
		{in: []string{"192.0.2.1:5353", "2001:db8::1"}, want: []string{"192.0.2.1:5353", "[2001:db8::1]:53"}},
		{in: []string{"[2001:db8::1]", "[2001:db8::2]:54"}, want: []string{"[2001:db8::1]:53", "[2001:db8::2]:54"}},
		{in: []string{"resolver.example"}, want: []string{"resolver.example:53"}},
		{in: nil, wantErr: true},
		{in: []string{""}, wantErr: true},
		{in: []string{"192.0.2.1:0"}, wantErr: true},
		{in: []string{"192.0.2.1:dns"}, wantErr: true},
		{in: []string{"192.0.2.1:70000"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.in, ","), func(t *testing.T) {
			f, err := New(Config{Upstreams: tt.in})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("New(%q): got nil error, want one", tt.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tt.in, err)
			}
			if got := strings.Join(f.upstreams, " "); got != strings.Join(tt.want, " ") {
				t.Errorf("upstreams: got %s, want %s", got, strings.Join(tt.want, " "))
			}
		})
	}
	if _, err := New(Config{Upstreams: []string{"192.0.2.1"}, Timeout: -1}); err == nil {
		t.Error("negative Timeout: got nil error, want one")
	}
}

func TestServfail(t *testing.T) {
	q := query(t, 0xabcd, "e.test.")
	q[3] |= 0x10 // CD
	withOPT := func() []byte {
		m := dnsmessage.Message{
			Header:    dnsmessage.Header{ID: 9, RecursionDesired: true},
			Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("f.test."), Type: dnsmessage.TypeAAAA, Class: dnsmessage.ClassINET}},
		}
		var opt dnsmessage.ResourceHeader
		if err := opt.SetEDNS0(1232, dnsmessage.RCodeSuccess, false); err != nil {
			t.Fatal(err)
		}
		m.Additionals = []dnsmessage.Resource{{Header: opt, Body: &dnsmessage.OPTResource{}}}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	long := []byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	for range 5 {
		long = append(long, 63)
		long = append(long, bytes.Repeat([]byte{'a'}, 63)...)
	}
	long = append(long, 0, 0, 1, 0, 1)

	tests := []struct {
		name    string
		q       []byte
		wantNil bool
		wantID  uint16
		wantQ   string
		wantLen int
	}{
		{name: "plain", q: q, wantID: 0xabcd, wantQ: "e.test.", wantLen: len(q)},
		{name: "edns record dropped", q: withOPT, wantID: 9, wantQ: "f.test.", wantLen: 12 + 8 + 4},
		{name: "root name", q: []byte{0, 3, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1}, wantID: 3, wantQ: ".", wantLen: 17},
		{name: "two questions", q: func() []byte { b := bytes.Clone(q); b[5] = 2; return b }(), wantNil: true},
		{name: "no question", q: q[:12], wantNil: true},
		{name: "response", q: func() []byte { b := bytes.Clone(q); b[2] |= 0x80; return b }(), wantNil: true},
		{name: "truncated question", q: q[:len(q)-1], wantNil: true},
		{name: "compressed name", q: []byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}, wantNil: true},
		{name: "name over 255 bytes", q: long, wantNil: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := servfail(tt.q)
			if tt.wantNil {
				if r != nil {
					t.Fatalf("got %x, want nil", r)
				}
				return
			}
			if len(r) != tt.wantLen {
				t.Errorf("length: got %d, want %d", len(r), tt.wantLen)
			}
			var m dnsmessage.Message
			if err := m.Unpack(r); err != nil {
				t.Fatalf("unpack: %v", err)
			}
			h := m.Header
			if h.ID != tt.wantID || !h.Response || h.RCode != dnsmessage.RCodeServerFailure ||
				!h.RecursionDesired || !h.RecursionAvailable || h.Truncated || h.Authoritative {
				t.Errorf("header: got %+v", h)
			}
			if len(m.Questions) != 1 || m.Questions[0].Name.String() != tt.wantQ {
				t.Errorf("questions: got %v, want one for %s", m.Questions, tt.wantQ)
			}
			if len(m.Answers)+len(m.Authorities)+len(m.Additionals) != 0 {
				t.Errorf("got records in SERVFAIL: %+v", m)
			}
			if got, want := r[3]&0x10, tt.q[3]&0x10; got != want {
				t.Errorf("CD bit: got %x, want %x", got, want)
			}
		})
	}
}

func TestReadWriteMsg(t *testing.T) {
	msg := query(t, 1, "g.test.")
	var b bytes.Buffer
	if err := writeMsg(&b, msg); err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint16(b.Bytes()); int(got) != len(msg) {
		t.Fatalf("prefix: got %d, want %d", got, len(msg))
	}
	tests := []struct {
		name    string
		in      []byte
		bufLen  int
		want    []byte
		wantErr error
	}{
		{"whole message", b.Bytes(), maxMsg, msg, nil},
		{"empty stream", nil, maxMsg, nil, io.EOF},
		{"half a prefix", []byte{0}, maxMsg, nil, io.ErrUnexpectedEOF},
		{"cut message", b.Bytes()[:b.Len()-1], maxMsg, nil, io.ErrUnexpectedEOF},
		{"prefix only", b.Bytes()[:2], maxMsg, nil, io.ErrUnexpectedEOF},
		{"below a header", []byte{0, 11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, maxMsg, nil, errMsgLen},
		{"beyond the buffer", b.Bytes(), len(msg) - 1, nil, errMsgLen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readMsg(bytes.NewReader(tt.in), make([]byte, tt.bufLen))
			if err != tt.wantErr || !bytes.Equal(got, tt.want) {
				t.Errorf("got %x, %v; want %x, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if err := writeMsg(io.Discard, make([]byte, maxMsg+1)); err != errMsgLen {
		t.Errorf("writeMsg of %d bytes: got %v, want errMsgLen", maxMsg+1, err)
	}
}

// FuzzReadMsg checks that the TCP framing reader never panics, never
// returns more than the buffer or fewer than a header, and that what it
// returns is what the prefix announced.
func FuzzReadMsg(f *testing.F) {
	f.Add([]byte{0, 12, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}, uint16(64))
	f.Add([]byte{0, 0}, uint16(0))
	f.Add([]byte{0xff, 0xff, 1}, uint16(65535))
	f.Add([]byte{0, 20, 1, 2}, uint16(20))
	f.Fuzz(func(t *testing.T, in []byte, bufLen uint16) {
		buf := make([]byte, bufLen)
		r := bytes.NewReader(in)
		for {
			m, err := readMsg(r, buf)
			if err != nil {
				if m != nil {
					t.Fatalf("got %d bytes with error %v", len(m), err)
				}
				return
			}
			if len(m) < headerLen || len(m) > len(buf) {
				t.Fatalf("got %d bytes from a %d-byte buffer", len(m), len(buf))
			}
			consumed := len(in) - r.Len()
			if p := int(binary.BigEndian.Uint16(in[consumed-len(m)-2:])); p != len(m) {
				t.Fatalf("got %d bytes, prefix said %d", len(m), p)
			}
		}
	})
}

// FuzzServfail checks that building a SERVFAIL never panics and yields a
// response with the query's ID and question.
func FuzzServfail(f *testing.F) {
	f.Add([]byte{0, 3, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1})
	f.Add([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	f.Add([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 1, 0, 1, 9, 9})
	f.Fuzz(func(t *testing.T, q []byte) {
		r := servfail(q)
		if r == nil {
			return
		}
		if len(r) > len(q) || !bytes.Equal(r[headerLen:], q[headerLen:len(r)]) || r[0] != q[0] || r[1] != q[1] {
			t.Fatalf("servfail(%x) = %x: not the query's ID and question", q, r)
		}
		if r[2]&0x80 == 0 || r[3]&0x0f != 2 {
			t.Fatalf("servfail(%x) = %x: not a SERVFAIL response", q, r)
		}
	})
}
