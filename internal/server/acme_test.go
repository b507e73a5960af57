package server_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/server"
	"golang.org/x/net/dns/dnsmessage"
)

// acmeDomain is the name the tests get certificates for. The test's DNS
// responder resolves it (and every other name) to 127.0.0.1, where
// Pebble's validation connects.
const acmeDomain = "vpn.nitronet.test"

// TestACMEWithPebble: `serve --acme-domain` gets a real certificate from
// an ACME CA (Pebble, in this process) and serves HTTPS with it, verified
// against the CA's root; the certificate and the account key are cached
// in DATA/acme (0700), so that a restart serves the same certificate
// without the CA. The CA validates by TLS-ALPN-01 on the HTTPS listener,
// or, when that port is unreachable, by HTTP-01 on --acme-http-listen.
func TestACMEWithPebble(t *testing.T) {
	t.Setenv("PEBBLE_VA_NOSLEEP", "1") // Pebble waits up to 5 s per validation otherwise
	dnsAddr := startDNS(t)

	t.Run("tls-alpn-01", func(t *testing.T) {
		tlsPort := freePort(t, "tcp")
		p := startPebble(t, freePort(t, "tcp"), tlsPort, dnsAddr)
		data := t.TempDir()
		cfg := acmeConfig(t, data, tlsPort, p)
		cfg.Gateway.Mode = config.GatewayUserspace
		cfg.Gateway.ListenPort = freePort(t, "udp")
		out := &lockedBuffer{}
		stop := runServer(t, cfg, out)

		first := httpsGet(t, tlsPort, p.roots, "/healthz")
		if !strings.Contains(first.Issuer.CommonName, "Pebble") {
			t.Fatalf("certificate issued by %q, want Pebble", first.Issuer.CommonName)
		}
		// The in-process gateway reached the server over HTTPS, trusting
		// exactly the server's own ACME certificate.
		waitFor(t, out, "running in this process")
		waitFor(t, out, "TLS certificate for "+acmeDomain+" from Pebble")
		checkCache(t, data)
		stop()

		// Restarted with the CA gone, the server serves the cached
		// certificate.
		p.close()
		cfg.Gateway.Mode = ""
		stop = runServer(t, cfg, &lockedBuffer{})
		defer stop()
		if again := httpsGet(t, tlsPort, p.roots, "/healthz"); !again.Equal(first) {
			t.Fatalf("after a restart: got certificate serial %s, want the cached %s", again.SerialNumber, first.SerialNumber)
		}
	})

	t.Run("http-01", func(t *testing.T) {
		tlsPort, httpPort := freePort(t, "tcp"), freePort(t, "tcp")
		// Pebble's TLS-ALPN-01 validation goes to a port nobody listens
		// on, so it fails and the server falls back to HTTP-01.
		p := startPebble(t, httpPort, freePort(t, "tcp"), dnsAddr)
		data := t.TempDir()
		cfg := acmeConfig(t, data, tlsPort, p)
		cfg.ACME.HTTPListen = "127.0.0.1:" + strconv.Itoa(httpPort)
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		defer runServer(t, cfg, &lockedBuffer{})()

		httpsGet(t, tlsPort, p.roots, "/healthz")
		checkCache(t, data)
		// Everything else on the HTTP port goes to HTTPS, on a configured
		// name only.
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for host, want := range map[string]string{
			acmeDomain + ":" + strconv.Itoa(httpPort): "https://" + acmeDomain + "/devices?x=1",
			"evil.example": "https://" + acmeDomain + "/devices?x=1",
		} {
			req, _ := http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(httpPort)+"/devices?x=1", nil)
			req.Host = host
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
				t.Errorf("plain HTTP with Host %s: got %d to %q, want 301 to %q", host, resp.StatusCode, resp.Header.Get("Location"), want)
			}
		}
	})
}

// TestACMESettings: the ACME settings are checked at start, with errors
// that name the flag.
func TestACMESettings(t *testing.T) {
	roots := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(roots, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, _ := selfSigned(t, t.TempDir())
	for _, c := range []struct {
		name string
		set  func(*config.Settings)
		want string
	}{
		{"ip address", func(c *config.Settings) { c.ACME.Domains = []string{"127.0.0.1"} }, "--acme-domain"},
		{"wildcard", func(c *config.Settings) { c.ACME.Domains = []string{"*.example.com"} }, "--acme-domain"},
		{"single label", func(c *config.Settings) { c.ACME.Domains = []string{"localhost"} }, "--acme-domain"},
		{"bad label", func(c *config.Settings) { c.ACME.Domains = []string{"vpn_1.example.com"} }, "--acme-domain"},
		{"http directory", func(c *config.Settings) {
			c.ACME.Domains, c.ACME.Directory = []string{"vpn.example.com"}, "http://ca.example/dir"
		}, "--acme-directory"},
		{"bad email", func(c *config.Settings) { c.ACME.Domains, c.ACME.Email = []string{"vpn.example.com"}, "ops" }, "--acme-email"},
		{"bad roots", func(c *config.Settings) { c.ACME.Domains, c.ACME.CARoots = []string{"vpn.example.com"}, roots }, "--acme-ca-roots"},
		{"http listen alone", func(c *config.Settings) { c.ACME.HTTPListen = ":80" }, "--acme-http-listen"},
		{"with a certificate", func(c *config.Settings) {
			c.ACME.Domains, c.TLSCert, c.TLSKey = []string{"vpn.example.com"}, certFile, keyFile
		}, "--acme-domain and --tls-cert"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			c.set(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error naming %s", err, c.want)
			}
		})
	}
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.ACME.Domains = []string{" VPN.Example.com. ", "vpn.example.com"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.ACME.Domains) != 1 || cfg.ACME.Domains[0] != "vpn.example.com" || !cfg.ServesTLS() {
		t.Fatalf("got domains %q (TLS %v), want [vpn.example.com] with TLS", cfg.ACME.Domains, cfg.ServesTLS())
	}
}

// pebble is an ACME CA running in this process.
type pebble struct {
	directory string         // its ACME directory URL
	dirRoots  string         // PEM file with the root of the directory's own HTTPS certificate
	roots     *x509.CertPool // the root that issued certificates chain to
	close     func()
}

// startPebble starts Pebble's web front end on loopback HTTPS, with a
// validation authority that resolves names with the DNS server at dnsAddr
// and validates HTTP-01 on httpPort and TLS-ALPN-01 on tlsPort.
func startPebble(t *testing.T, httpPort, tlsPort int, dnsAddr string) *pebble {
	t.Helper()
	logs := &lockedBuffer{}
	logger := log.New(logs, "pebble ", log.Lmicroseconds)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Pebble's log:\n%s", logs)
		}
	})
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "test"}})
	validator := va.New(logger, httpPort, tlsPort, false, dnsAddr, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	hs := httptest.NewTLSServer(front.Handler())
	hs.Config.ErrorLog = log.New(io.Discard, "", 0)

	dirRoots := filepath.Join(t.TempDir(), "pebble-https.pem")
	if err := os.WriteFile(dirRoots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(authority.GetRootCert(0).DER)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	p := &pebble{directory: hs.URL + wfe.DirectoryPath, dirRoots: dirRoots, roots: roots, close: hs.Close}
	t.Cleanup(hs.Close)
	return p
}

// acmeConfig returns serve's settings for automatic TLS from p on
// 127.0.0.1:tlsPort, with data in dir.
func acmeConfig(t *testing.T, dir string, tlsPort int, p *pebble) config.Settings {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:" + strconv.Itoa(tlsPort)
	cfg.Transport.MetricsListen = ""
	cfg.ACME.Domains = []string{acmeDomain}
	cfg.ACME.Email = "ops@nitronet.test"
	cfg.ACME.Directory = p.directory
	cfg.ACME.CARoots = p.dirRoots
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runServer runs `serve` with cfg (Server.Run) until stop is called.
func runServer(t *testing.T, cfg config.Settings, out *lockedBuffer) (stop func()) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the server's output:\n%s", out)
		}
	})
	srv, err := server.New(context.Background(), cfg, server.Deps{
		Logger: slog.New(slog.NewTextHandler(out, nil)), Clock: time.Now, Rand: rand.Reader, Stdout: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		srv.Close()
	}
	t.Cleanup(stop)
	return stop
}

// httpsGet fetches path from the server on 127.0.0.1:port as
// https://acmeDomain, verifying its certificate against roots, and
// returns the certificate. The first request waits for the issuance.
func httpsGet(t *testing.T, port int, roots *x509.CertPool, path string) *x509.Certificate {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var d net.Dialer
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: acmeDomain},
	}}
	defer hc.CloseIdleConnections()
	var resp *http.Response
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var err error
		resp, err = hc.Get("https://" + acmeDomain + path)
		if err == nil {
			break
		}
		// The server may not listen yet.
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" || time.Now().After(deadline) {
			t.Fatalf("GET https://%s%s: %v", acmeDomain, path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET https://%s%s: got %d, want 200", acmeDomain, path, resp.StatusCode)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if err := leaf.VerifyHostname(acmeDomain); err != nil {
		t.Fatal(err)
	}
	return leaf
}

// checkCache checks that DATA/acme is private and holds the account key
// and the certificate. The manager writes the certificate there just after
// the handshake that waited for it, so it waits a little.
func checkCache(t *testing.T, data string) {
	t.Helper()
	dir := filepath.Join(data, "acme")
	for _, name := range []string{"acme_account+key", acmeDomain} {
		file := filepath.Join(dir, name)
		deadline := time.Now().Add(30 * time.Second)
		st, err := os.Stat(file)
		for err != nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			st, err = os.Stat(file)
		}
		if err != nil {
			t.Errorf("the ACME cache lacks %s: %v", name, err)
			continue
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", name, st.Mode().Perm())
		}
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v, want a directory of mode 0700", dir, err)
	}
}

// waitFor waits until out holds want.
func waitFor(t *testing.T, out *lockedBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the server never said %q; it said:\n%s", want, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startDNS starts a DNS server on loopback TCP (the transport Pebble uses
// with a custom resolver) that answers every A query with 127.0.0.1 and
// every other query with no records, and returns its address.
func startDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
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
				serveDNS(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// serveDNS answers length-prefixed DNS messages on c (RFC 1035 4.2.2)
// until the client closes it.
func serveDNS(c net.Conn) {
	for {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		a, err := dnsAnswer(q)
		if err != nil {
			return
		}
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(a))), a...)); err != nil {
			return
		}
	}
}

func dnsAnswer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if q.Type == dnsmessage.TypeA {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
		if err := b.AResource(rh, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
