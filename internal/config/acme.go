package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// LetsEncrypt is Let's Encrypt's production ACME directory, the default of
// --acme-directory.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// ACME are the settings of automatic TLS: with Domains set, `serve` gets
// certificates for them from an ACME CA (RFC 8555) and serves HTTPS on
// --listen. The CA checks that this server answers for each domain, with
// the TLS-ALPN-01 challenge on port 443 of the domain (so --listen must be
// reachable there) or, with HTTPListen, the HTTP-01 challenge on port 80.
type ACME struct {
	// Domains are the names certificates are requested for; no others
	// are answered.
	Domains []string
	// Email is the contact address given to the CA (optional).
	Email string
	// Directory is the CA's ACME directory URL.
	Directory string
	// CARoots is a PEM file of the roots that the directory's own HTTPS
	// certificate is checked against; empty means the system's roots.
	CARoots string
	// HTTPListen, if set, is a plain HTTP listen address that answers the
	// HTTP-01 challenge and redirects everything else to HTTPS.
	HTTPListen string
}

func (a *ACME) bind(fs *pflag.FlagSet) {
	fs.StringSliceVar(&a.Domains, "acme-domain", nil, "automatic TLS: get a certificate for this domain from an ACME CA and serve HTTPS on --listen (repeatable; the CA connects to port 443 of the domain)")
	fs.StringVar(&a.Email, "acme-email", "", "contact email given to the ACME CA (expiry warnings)")
	fs.StringVar(&a.Directory, "acme-directory", LetsEncrypt, "ACME directory URL of the CA")
	fs.StringVar(&a.CARoots, "acme-ca-roots", "", "PEM file of the roots the ACME directory's HTTPS is checked against (a private CA); default the system's")
	fs.StringVar(&a.HTTPListen, "acme-http-listen", "", "also answer the HTTP-01 challenge on this plain-HTTP address (e.g. :80), redirecting everything else to HTTPS")
}

// validate checks a and normalises the domains. Errors name the flag.
func (a *ACME) validate() error {
	if len(a.Domains) == 0 {
		if a.HTTPListen != "" {
			return fmt.Errorf("--acme-http-listen needs --acme-domain")
		}
		return nil
	}
	seen := map[string]bool{}
	var doms []string
	for _, d := range a.Domains {
		d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		if err := checkDomain(d); err != nil {
			return fmt.Errorf("--acme-domain %q: %v", d, err)
		}
		if !seen[d] {
			seen[d] = true
			doms = append(doms, d)
		}
	}
	a.Domains = doms
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t\r\n,;<>")) {
		return fmt.Errorf("--acme-email %q: want an email address", a.Email)
	}
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("--acme-directory %q: want an https URL", a.Directory)
	}
	if a.CARoots != "" {
		if _, err := a.RootPool(); err != nil {
			return err
		}
	}
	if a.HTTPListen != "" {
		if _, _, err := net.SplitHostPort(a.HTTPListen); err != nil {
			return fmt.Errorf("--acme-http-listen %q: want HOST:PORT, e.g. :80", a.HTTPListen)
		}
	}
	return nil
}

// RootPool returns the roots of CARoots, or nil (the system's roots) when
// it is empty.
func (a *ACME) RootPool() (*x509.CertPool, error) {
	if a.CARoots == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(a.CARoots)
	if err != nil {
		return nil, fmt.Errorf("--acme-ca-roots: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--acme-ca-roots %s holds no PEM certificate", a.CARoots)
	}
	return pool, nil
}

// checkDomain accepts a fully qualified DNS name an ACME CA can issue a
// certificate for: no IP address, no wildcard (which needs DNS-01), no
// port.
func checkDomain(d string) error {
	switch {
	case d == "":
		return fmt.Errorf("empty domain")
	case net.ParseIP(d) != nil:
		return fmt.Errorf("want a DNS name, not an IP address")
	case strings.Contains(d, "*"):
		return fmt.Errorf("wildcards need the DNS-01 challenge, which is not supported")
	case len(d) > 253 || !strings.Contains(d, "."):
		return fmt.Errorf("want a fully qualified domain name such as vpn.example.com")
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return fmt.Errorf("label %q is not a valid DNS label", label)
		}
	}
	return nil
}
