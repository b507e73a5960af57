package ephemeral

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/wgkey"
)

func mustKey(t testing.TB) wgkey.PrivateKey {
	t.Helper()
	k, err := wgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDerivePSKMatchesSpec recomputes the documented derivation by hand:
// HKDF-SHA256 (RFC 5869: extract with HMAC(salt, ikm), expand one block)
// with the transcript hash as salt.
func TestDerivePSKMatchesSpec(t *testing.T) {
	tr := Transcript{
		Device: wgkey.PublicKey{1}, Gateway: wgkey.PublicKey{2}, Ephemeral: wgkey.PublicKey{3},
		EncapsulationKey: bytes.Repeat([]byte{4}, mlkem.EncapsulationKeySize1024),
		Ciphertext:       bytes.Repeat([]byte{5}, mlkem.CiphertextSize1024),
	}
	secret := bytes.Repeat([]byte{6}, 32)

	h := sha256.New()
	h.Write([]byte("nitronet ephemeral peer v1\x00"))
	for _, part := range [][]byte{tr.Device[:], tr.Gateway[:], tr.Ephemeral[:], tr.EncapsulationKey, tr.Ciphertext} {
		h.Write(part)
	}
	salt := h.Sum(nil)
	ext := hmac.New(sha256.New, salt)
	ext.Write(secret)
	prk := ext.Sum(nil)
	exp := hmac.New(sha256.New, prk)
	exp.Write([]byte("nitronet wireguard psk v1\x01"))
	want := exp.Sum(nil)

	got, err := DerivePSK(secret, tr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:], want) {
		t.Fatalf("DerivePSK: got %x, want %x", got, want)
	}
}

// TestDerivePSKBindsTranscript: changing any one part of the transcript or
// the secret changes the key.
func TestDerivePSKBindsTranscript(t *testing.T) {
	base := Transcript{
		Device: wgkey.PublicKey{1}, Gateway: wgkey.PublicKey{2}, Ephemeral: wgkey.PublicKey{3},
		EncapsulationKey: bytes.Repeat([]byte{4}, 8), Ciphertext: bytes.Repeat([]byte{5}, 8),
	}
	secret := bytes.Repeat([]byte{6}, 32)
	ref, _ := DerivePSK(secret, base)
	mods := map[string]func(*Transcript, *[]byte){
		"device":    func(t *Transcript, _ *[]byte) { t.Device[31] ^= 1 },
		"gateway":   func(t *Transcript, _ *[]byte) { t.Gateway[0] ^= 1 },
		"ephemeral": func(t *Transcript, _ *[]byte) { t.Ephemeral[5] ^= 1 },
		"ek":        func(t *Transcript, _ *[]byte) { t.EncapsulationKey = append([]byte{9}, t.EncapsulationKey[1:]...) },
		"ct":        func(t *Transcript, _ *[]byte) { t.Ciphertext = append([]byte{9}, t.Ciphertext[1:]...) },
		"secret":    func(_ *Transcript, s *[]byte) { *s = append([]byte{7}, (*s)[1:]...) },
	}
	for name, mod := range mods {
		tr, s := base, append([]byte(nil), secret...)
		mod(&tr, &s)
		got, _ := DerivePSK(s, tr)
		if got == ref {
			t.Errorf("changing %s: got the same PSK, want another", name)
		}
	}
}

// fakeGateway records what a Server installs.
type fakeGateway struct {
	mu       sync.Mutex
	devices  map[netip.Addr]wgkey.PublicKey
	refuse   bool
	installs []install
}

type install struct {
	device, eph wgkey.PublicKey
	psk         PSK
}

func (g *fakeGateway) device(a netip.Addr) (wgkey.PublicKey, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k, ok := g.devices[a]
	if !ok {
		return wgkey.PublicKey{}, ErrNotDevice
	}
	return k, nil
}

func (g *fakeGateway) install(d, e wgkey.PublicKey, psk PSK) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refuse {
		return ErrRefused
	}
	g.installs = append(g.installs, install{d, e, psk})
	return nil
}

// serve runs a Server for gw on a loopback listener and returns its
// address.
func serve(t *testing.T, gwKey wgkey.PublicKey, gw *fakeGateway) (*Server, string) {
	t.Helper()
	srv, err := NewServer(ServerConfig{Gateway: gwKey, Device: gw.device, Install: gw.install, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, ln.Addr().String()
}

func TestExchange(t *testing.T) {
	gwKey, devKey := mustKey(t).Public(), mustKey(t).Public()
	gw := &fakeGateway{devices: map[netip.Addr]wgkey.PublicKey{netip.MustParseAddr("127.0.0.1"): devKey}}
	srv, addr := serve(t, gwKey, gw)
	var d net.Dialer
	res, err := Exchange(context.Background(), ClientConfig{Dial: d.DialContext, Address: addr, Device: devKey, Gateway: gwKey})
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if len(gw.installs) != 1 {
		t.Fatalf("installs: got %d, want 1", len(gw.installs))
	}
	in := gw.installs[0]
	if in.device != devKey || in.eph != res.Key.Public() {
		t.Errorf("install: got device %v eph %v, want %v and the client's new key %v", in.device, in.eph, devKey, res.Key.Public())
	}
	if in.psk != res.PSK || res.PSK == (PSK{}) {
		t.Errorf("PSK: gateway and client disagree, or it is zero")
	}
	// The server counts an installation once its answer is written, which
	// may be just after the client has read it.
	if st := waitStats(srv, func(st Stats) bool { return st.Installed == 1 }); st.Installed != 1 || st.Refused != 0 {
		t.Errorf("stats: got %+v, want 1 installed", st)
	}

	// A second exchange makes another key and another PSK.
	res2, err := Exchange(context.Background(), ClientConfig{Dial: d.DialContext, Address: addr, Device: devKey, Gateway: gwKey})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Key == res.Key || res2.PSK == res.PSK {
		t.Errorf("second exchange: got the same key or PSK, want fresh ones")
	}

	// A client that believes in another device or gateway key derives
	// another PSK: the key is bound to the transcript.
	res3, err := Exchange(context.Background(), ClientConfig{Dial: d.DialContext, Address: addr, Device: mustKey(t).Public(), Gateway: gwKey})
	if err != nil {
		t.Fatal(err)
	}
	if res3.PSK == gw.installs[2].psk {
		t.Errorf("a client with the wrong device key derived the gateway's PSK")
	}
}

func TestExchangeRefusals(t *testing.T) {
	gwKey, devKey := mustKey(t).Public(), mustKey(t).Public()
	var d net.Dialer

	t.Run("not_a_device", func(t *testing.T) {
		gw := &fakeGateway{devices: map[netip.Addr]wgkey.PublicKey{}}
		_, addr := serve(t, gwKey, gw)
		_, err := Exchange(context.Background(), ClientConfig{Dial: d.DialContext, Address: addr, Device: devKey, Gateway: gwKey})
		var re *RefusedError
		if !errors.As(err, &re) || re.Code != CodeNotDevice {
			t.Fatalf("got %v, want a RefusedError with CodeNotDevice", err)
		}
		if len(gw.installs) != 0 {
			t.Errorf("installed %d, want none", len(gw.installs))
		}
	})
	t.Run("install_refused", func(t *testing.T) {
		gw := &fakeGateway{devices: map[netip.Addr]wgkey.PublicKey{netip.MustParseAddr("127.0.0.1"): devKey}, refuse: true}
		_, addr := serve(t, gwKey, gw)
		_, err := Exchange(context.Background(), ClientConfig{Dial: d.DialContext, Address: addr, Device: devKey, Gateway: gwKey})
		var re *RefusedError
		if !errors.As(err, &re) || re.Code != CodeRefused {
			t.Fatalf("got %v, want a RefusedError with CodeRefused", err)
		}
	})
	t.Run("nothing_listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, err = Exchange(context.Background(), ClientConfig{Dial: d.DialContext, Address: addr, Device: devKey, Gateway: gwKey})
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("got %v, want ErrUnsupported", err)
		}
		if strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("error %q names the address", err)
		}
	})
	t.Run("closed_without_answer", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				io.CopyN(io.Discard, c, 10)
				c.Close()
			}
		}()
		_, err = Exchange(context.Background(), ClientConfig{Dial: d.DialContext, Address: ln.Addr().String(), Device: devKey, Gateway: gwKey})
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("got %v, want ErrUnsupported", err)
		}
	})
}

// exchangeRaw sends raw bytes to a Server through a pipe and returns the
// frame it answers with.
func exchangeRaw(t *testing.T, srv *Server, from string, raw []byte) (Frame, error) {
	t.Helper()
	a, b := net.Pipe()
	conn := &addrConn{Conn: b, remote: &net.TCPAddr{IP: net.ParseIP(from), Port: 40000}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeConn(conn)
	}()
	go func() {
		a.Write(raw)
	}()
	a.SetDeadline(time.Now().Add(5 * time.Second))
	f, err := ReadFrame(a)
	a.Close()
	<-done
	return f, err
}

type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

func TestServerErrors(t *testing.T) {
	gwKey, devKey := mustKey(t).Public(), mustKey(t).Public()
	gw := &fakeGateway{devices: map[netip.Addr]wgkey.PublicKey{netip.MustParseAddr("100.64.0.2"): devKey}}
	srv, err := NewServer(ServerConfig{Gateway: gwKey, Device: gw.device, Install: gw.install, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dk, _ := mlkem.GenerateKey1024()
	good := Request{Ephemeral: mustKey(t).Public(), EncapsulationKey: dk.EncapsulationKey().Bytes()}.Marshal()
	badEK := append(append([]byte(nil), good[:32]...), bytes.Repeat([]byte{0xff}, mlkem.EncapsulationKeySize1024)...)
	cases := []struct {
		name string
		from string
		raw  []byte
		want Code // 0: a response
	}{
		{"good", "100.64.0.2", AppendFrame(nil, TypeRequest, good), 0},
		{"version_2", "100.64.0.2", appendFrame(nil, 2, TypeRequest, good), CodeVersion},
		{"wrong_type", "100.64.0.2", AppendFrame(nil, TypeResponse, good), CodeMalformed},
		{"short_body", "100.64.0.2", AppendFrame(nil, TypeRequest, good[:100]), CodeMalformed},
		{"zero_ephemeral", "100.64.0.2", AppendFrame(nil, TypeRequest, append(make([]byte, 32), good[32:]...)), CodeMalformed},
		{"device_key_as_ephemeral", "100.64.0.2", AppendFrame(nil, TypeRequest, append(append([]byte(nil), devKey[:]...), good[32:]...)), CodeMalformed},
		{"invalid_ek", "100.64.0.2", AppendFrame(nil, TypeRequest, badEK), CodeMalformed},
		{"bad_magic", "100.64.0.2", append([]byte("HTTP"), make([]byte, 4)...), CodeMalformed},
		{"unknown_source", "100.64.0.3", AppendFrame(nil, TypeRequest, good), CodeNotDevice},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := exchangeRaw(t, srv, tc.from, tc.raw)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if f.Version != Version {
				t.Errorf("answer version: got %d, want %d", f.Version, Version)
			}
			if tc.want == 0 {
				if f.Type != TypeResponse || len(f.Body) != ResponseSize {
					t.Fatalf("got type %d with %d bytes, want a response", f.Type, len(f.Body))
				}
				return
			}
			if f.Type != TypeError {
				t.Fatalf("got type %d, want an error", f.Type)
			}
			code, msg, err := ParseError(f.Body)
			if err != nil || code != tc.want || msg == "" {
				t.Errorf("got code %v %q (%v), want %v with a message", code, msg, err, tc.want)
			}
		})
	}
	if len(gw.installs) != 1 {
		t.Errorf("installs: got %d, want 1 (the good request only)", len(gw.installs))
	}
}

func TestErrorBodyCutsAtRune(t *testing.T) {
	b := ErrorBody(CodeRefused, strings.Repeat("é", 150))
	code, msg, err := ParseError(b)
	if err != nil || code != CodeRefused || len(msg) > MaxMessage || strings.ContainsRune(msg, '\uFFFD') {
		t.Errorf("got %v %d bytes %v, want a whole-rune message of at most %d bytes", code, len(msg), err, MaxMessage)
	}
}

// FuzzReadFrame: ReadFrame never panics, never returns a body above
// MaxBody, and a frame it reads appends back to the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, TypeRequest, make([]byte, RequestSize)))
	f.Add(AppendFrame(nil, TypeError, ErrorBody(CodeVersion, "v")))
	f.Add([]byte("NNEP\x01\x01\xff\xff"))
	f.Add([]byte("NNE"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		fr, err := ReadFrame(r)
		if err != nil {
			return
		}
		if len(fr.Body) > MaxBody {
			t.Fatalf("body of %d bytes", len(fr.Body))
		}
		used := in[:len(in)-r.Len()]
		if again := appendFrame(nil, fr.Version, fr.Type, fr.Body); !bytes.Equal(again, used) {
			t.Fatalf("re-encoded %x, read %x", again, used)
		}
		_, _ = ParseRequest(fr.Body)
		_, _, _ = ParseError(fr.Body)
	})
}

// FuzzServer: whatever a client sends, the server answers with at most one
// well-formed frame and never panics.
func FuzzServer(f *testing.F) {
	gwKey, devKey := mustKey(f).Public(), mustKey(f).Public()
	dk, _ := mlkem.GenerateKey1024()
	good := Request{Ephemeral: wgkey.PublicKey{9}, EncapsulationKey: dk.EncapsulationKey().Bytes()}.Marshal()
	f.Add(AppendFrame(nil, TypeRequest, good))
	f.Add(AppendFrame(nil, TypeRequest, good[:40]))
	f.Add([]byte("NNEP"))
	gw := &fakeGateway{devices: map[netip.Addr]wgkey.PublicKey{netip.MustParseAddr("100.64.0.2"): devKey}}
	srv, err := NewServer(ServerConfig{Gateway: gwKey, Device: gw.device, Install: gw.install, Timeout: 200 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		conn := &bufConn{r: bytes.NewReader(in)}
		srv.ServeConn(conn)
		out := conn.w.Bytes()
		if len(out) == 0 {
			return
		}
		r := bytes.NewReader(out)
		fr, err := ReadFrame(r)
		if err != nil || r.Len() != 0 || (fr.Type != TypeResponse && fr.Type != TypeError) {
			t.Fatalf("server answered %x: %v", out, err)
		}
	})
}

// bufConn is a net.Conn that reads a fixed input, then io.EOF, and
// collects what is written.
type bufConn struct {
	net.Conn // nil: only the methods below are used
	r        *bytes.Reader
	w        bytes.Buffer
}

func (c *bufConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *bufConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *bufConn) Close() error                { return nil }
func (c *bufConn) SetDeadline(time.Time) error { return nil }
func (c *bufConn) RemoteAddr() net.Addr        { return &net.TCPAddr{IP: net.ParseIP("100.64.0.2"), Port: 1} }

// waitStats returns srv's counts once ok holds of them, or after 5 s.
func waitStats(srv *Server, ok func(Stats) bool) Stats {
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := srv.Stats()
		if ok(st) || time.Now().After(deadline) {
			return st
		}
		time.Sleep(time.Millisecond)
	}
}
