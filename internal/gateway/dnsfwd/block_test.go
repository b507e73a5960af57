package dnsfwd

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// suffixBlocker blocks a set of names and their subdomains, and records
// the names it was asked about.
type suffixBlocker struct {
	names []string
	mu    sync.Mutex
	asked []string
}

func (b *suffixBlocker) Blocked(name []byte) bool {
	b.mu.Lock()
	b.asked = append(b.asked, string(name))
	b.mu.Unlock()
	for _, n := range b.names {
		if string(name) == n || strings.HasSuffix(string(name), "."+n) {
			return true
		}
	}
	return false
}

func (b *suffixBlocker) askedAbout() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.asked...)
}

// exchangeUDP sends q to addr over UDP and returns the answer.
func exchangeUDPClient(t *testing.T, addr string, q []byte) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(q); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, maxMsg)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return buf[:n]
}

func TestWithBlocker(t *testing.T) {
	up := startUpstream(t, &upstream{})
	plain := newForwarder(t, Config{Upstreams: []string{up.addr}})
	bl := &suffixBlocker{names: []string{"ads.example"}}
	blocking := plain.WithBlocker(bl)
	udpPlain, _ := serve(t, plain)
	udpBlock, tcpBlock := serve(t, blocking)

	twoQuestions := func() []byte {
		q := query(t, 7, "ok.example.")
		q[5] = 2
		return append(q, q[headerLen:]...)
	}()
	tests := []struct {
		name      string
		addr      string
		q         []byte
		want      result
		upstreams int64 // queries the upstream saw
	}{
		{"blocked name: NXDOMAIN", udpBlock, query(t, 1, "ads.example."),
			result{id: 1, rcode: dnsmessage.RCodeNameError, qname: "ads.example."}, 0},
		{"blocked subdomain in upper case", udpBlock, query(t, 2, "WWW.Ads.Example."),
			result{id: 2, rcode: dnsmessage.RCodeNameError, qname: "WWW.Ads.Example."}, 0},
		{"other name forwarded", udpBlock, query(t, 3, "news.example."),
			result{id: 3, answers: []string{answerAddr.String()}, qname: "news.example."}, 1},
		{"same name without the blocker: forwarded", udpPlain, query(t, 4, "ads.example."),
			result{id: 4, answers: []string{answerAddr.String()}, qname: "ads.example."}, 1},
		{"two questions: FORMERR", udpBlock, twoQuestions, result{id: 7, rcode: dnsmessage.RCodeFormatError}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.udpQueries.Load()
			got := parse(t, exchangeUDPClient(t, tt.addr, tt.q))
			if !equal(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if n := up.udpQueries.Load() - before; n != tt.upstreams {
				t.Errorf("upstream queries: got %d, want %d", n, tt.upstreams)
			}
		})
	}

	// Over TCP too, pipelined.
	c, err := net.Dial("tcp", tcpBlock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for i, n := range []string{"x.ads.example.", "fine.example."} {
		if err := writeMsg(c, query(t, uint16(10+i), n)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, maxMsg)
	for i, want := range []dnsmessage.RCode{dnsmessage.RCodeNameError, dnsmessage.RCodeSuccess} {
		ans, err := readMsg(c, buf)
		if err != nil {
			t.Fatal(err)
		}
		if r := parse(t, ans); r.rcode != want || r.id != uint16(10+i) {
			t.Errorf("TCP answer %d: got %+v, want rcode %v", i, r, want)
		}
	}
	if got := blocking.Failures(); got != 0 || plain.Failures() != 0 {
		t.Errorf("Failures: got %d, want 0 (a block is not a failure)", got)
	}
	for _, n := range bl.askedAbout() {
		if n != strings.ToLower(n) || strings.HasSuffix(n, ".") {
			t.Errorf("blocker asked about %q: want lower case without the final dot", n)
		}
	}
}

func TestQuestionName(t *testing.T) {
	raw := func(labels ...string) []byte {
		q := []byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}
		for _, l := range labels {
			q = append(q, byte(len(l)))
			q = append(q, l...)
		}
		return append(q, 0, 0, 1, 0, 1)
	}
	tests := []struct {
		q    []byte
		want string
		ok   bool
	}{
		{raw("WWW", "Example", "COM"), "www.example.com", true},
		{raw(), "", true},
		{raw("a.b", "example"), "a\x00b.example", true},
		{raw("x\xffy"), "x\xffy", true},
		{raw("a")[:15], "", false},
	}
	for _, tt := range tests {
		var nb [255]byte
		got, ok := questionName(tt.q, &nb)
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("questionName(%x): got %q, %v; want %q, %v", tt.q, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzBlockAnswer checks that the blocking path never panics and that
// what it answers is a response to the query.
func FuzzBlockAnswer(f *testing.F) {
	f.Add([]byte{0, 3, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'a', 'd', 's', 0, 0, 1, 0, 1})
	f.Add([]byte{0, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1})
	f.Add([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	fw := &Forwarder{block: &suffixBlocker{names: []string{"ads"}}}
	f.Fuzz(func(t *testing.T, q []byte) {
		if !isQuery(q) {
			return
		}
		buf := make([]byte, maxMsg)
		r := fw.blockAnswer(q, buf)
		if r == nil {
			return
		}
		if r[0] != q[0] || r[1] != q[1] || r[2]&0x80 == 0 {
			t.Fatalf("blockAnswer(%x) = %x: not a response with the query's ID", q, r)
		}
		if rc := r[3] & 0x0f; rc == rcodeNXDomain && !bytes.Equal(r[headerLen:], q[headerLen:len(r)]) {
			t.Fatalf("blockAnswer(%x) = %x: NXDOMAIN without the query's question", q, r)
		}
	})
}
