package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// acmeState is the server's automatic TLS (--acme-domain), built on first
// use: `admin` commands, which share the server's settings, never touch
// the CA or DATA/acme.
type acmeState struct {
	once sync.Once
	m    *autocert.Manager
	tls  *tls.Config
	err  error

	mu     sync.Mutex
	warned map[string]time.Time // domain → last logged failure
}

// ACMECacheDir returns where automatic TLS keeps the CA account key and
// the certificates: DATA/acme, mode 0700, files 0600.
func (s *Server) ACMECacheDir() string { return filepath.Join(s.Config.DataDir, "acme") }

// acmeTLS returns the TLS configuration of automatic TLS, or nil without
// --acme-domain. Certificates come from the CA of --acme-directory on the
// first handshake that needs one (or from Run's warm-up) and are renewed
// 30 days before they expire; the CA's TLS-ALPN-01 challenge is answered
// on the same listener.
func (s *Server) acmeTLS() (*tls.Config, error) {
	a := &s.acme
	if len(s.Config.ACME.Domains) == 0 {
		return nil, nil
	}
	a.once.Do(func() { a.m, a.tls, a.err = s.newACME() })
	return a.tls, a.err
}

func (s *Server) newACME() (*autocert.Manager, *tls.Config, error) {
	cfg := s.Config.ACME
	roots, err := cfg.RootPool()
	if err != nil {
		return nil, nil, err
	}
	dir := s.ACMECacheDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("acme cache: %w", err)
	}
	// It holds the CA account key and the certificates' private keys.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("acme cache: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(dir),
		HostPolicy: autocert.HostWhitelist(cfg.Domains...),
		Email:      cfg.Email,
		Client: &acme.Client{
			DirectoryURL: cfg.Directory,
			UserAgent:    "nitronet",
			HTTPClient:   &http.Client{Transport: tr, Timeout: time.Minute},
		},
	}
	tc := m.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	get := tc.GetCertificate
	tc.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		c, err := get(hello)
		if err != nil {
			s.acmeFailed(strings.ToLower(hello.ServerName), err)
		}
		return c, err
	}
	return m, tc, nil
}

// acmeFailed logs that no certificate could be had for a configured
// domain, at most once a minute per domain. Handshakes for other names
// (scanners) are not logged, and neither is anything about the client:
// net/http's own TLS error log, which names client addresses, is
// discarded.
func (s *Server) acmeFailed(domain string, err error) {
	if !slices.Contains(s.Config.ACME.Domains, domain) {
		return
	}
	a := &s.acme
	a.mu.Lock()
	now := s.deps.Clock()
	last, seen := a.warned[domain]
	if seen && now.Sub(last) < time.Minute {
		a.mu.Unlock()
		return
	}
	if a.warned == nil {
		a.warned = map[string]time.Time{}
	}
	a.warned[domain] = now
	a.mu.Unlock()
	s.deps.Logger.Warn("acme: no certificate", "domain", domain, "err", err)
}

// startACME starts what automatic TLS needs beside the HTTPS listener:
// the HTTP-01 listener of --acme-http-listen, and a warm-up that gets the
// certificates at once (warmACME). Without --acme-domain it does nothing.
// stop closes the HTTP-01 listener and waits a little for the warm-up.
func (s *Server) startACME(ctx context.Context) (stop func(), err error) {
	tc, err := s.acmeTLS()
	if err != nil || tc == nil {
		return func() {}, err
	}
	fmt.Fprintf(s.deps.Stdout, "Automatic TLS for %s from %s (cache in %s)\n",
		strings.Join(s.Config.ACME.Domains, ", "), s.Config.ACME.Directory, s.ACMECacheDir())
	stopHTTP, err := s.serveACMEHTTP(ctx)
	if err != nil {
		return nil, err
	}
	warm := make(chan struct{})
	go func() { defer close(warm); s.warmACME(ctx, tc) }()
	return func() {
		stopHTTP()
		// An issuance under way cannot be cancelled; do not wait long.
		select {
		case <-warm:
		case <-time.After(10 * time.Second):
		}
	}, nil
}

// warmACME gets (or loads) the certificate of every configured domain
// once the server listens, so that the operator learns at start whether
// issuance works, and tells them on Stdout.
func (s *Server) warmACME(ctx context.Context, tc *tls.Config) {
	for _, d := range s.Config.ACME.Domains {
		if ctx.Err() != nil {
			return
		}
		c, err := tc.GetCertificate(modernHello(d))
		if err != nil {
			continue // logged by acmeFailed
		}
		leaf := c.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				continue
			}
		}
		fmt.Fprintf(s.deps.Stdout, "TLS certificate for %s from %s, valid until %s (renewed automatically)\n",
			d, leaf.Issuer.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}

// modernHello is the ClientHello of a current client (ECDSA P-256), with
// which the ACME manager returns the certificate such clients get. A hello
// without these lists counts as RSA-only, which would request a second
// certificate (and race the first issuance for the challenge).
func modernHello(domain string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{
		ServerName:       domain,
		CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedCurves:  []tls.CurveID{tls.CurveP256},
	}
}

// serveACMEHTTP answers the CA's HTTP-01 challenge on --acme-http-listen
// until ctx ends, and redirects every other GET or HEAD to HTTPS on the
// first configured domain the request names (or the first of all). It
// returns once it listens; stop closes it.
func (s *Server) serveACMEHTTP(ctx context.Context) (stop func(), err error) {
	addr := s.Config.ACME.HTTPListen
	if addr == "" {
		return func() {}, nil
	}
	if _, err := s.acmeTLS(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--acme-http-listen: %w", err)
	}
	challenges := s.acme.m.HTTPHandler(http.HandlerFunc(s.redirectHTTPS))
	stop = s.serveSide(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The host policy wants the bare name; the CA sends a port
		// when the domain's HTTP port is not 80.
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			r.Host = h
		}
		challenges.ServeHTTP(w, r)
	}), "acme http listener")
	fmt.Fprintf(s.deps.Stdout, "Answering ACME HTTP-01 challenges on http://%s (other requests are redirected to HTTPS)\n", ln.Addr())
	return stop, nil
}

// redirectHTTPS sends a plain-HTTP request to the same path over HTTPS,
// on a configured domain only: the Host header is the client's to choose.
func (s *Server) redirectHTTPS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "Use HTTPS.", http.StatusBadRequest)
		return
	}
	doms := s.Config.ACME.Domains
	host := strings.ToLower(r.Host)
	if !slices.Contains(doms, host) {
		host = doms[0]
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusMovedPermanently)
}

// acmeSelfClient returns the HTTP client the in-process gateway reaches
// this server with under automatic TLS: it dials the listen address and
// accepts exactly the certificate this server presents for its first
// domain, whichever CA issued it.
func (s *Server) acmeSelfClient(tc *tls.Config) *http.Client {
	domain := s.Config.ACME.Domains[0]
	ctc := &tls.Config{
		ServerName: domain,
		MinVersion: tls.VersionTLS12,
		// Verification is VerifyConnection's: the peer must present our
		// own certificate.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			own, err := tc.GetCertificate(modernHello(domain))
			if err != nil {
				return err
			}
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, own.Certificate[0]) {
				return errors.New("the control server did not present its own ACME certificate")
			}
			return nil
		},
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: ctc}}
}
