// Package gateways manages gateway records: creation with a one-time
// enrollment token, enrollment, and gateway authentication.
package gateways

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/secret"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// Config holds the service's dependencies.
type Config struct {
	Store  store.Store
	Logger *slog.Logger
	Clock  func() time.Time
	Rand   io.Reader
}

// Service manages gateways. It is safe for concurrent use.
type Service struct{ cfg Config }

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Logger == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("gateways: missing dependency")
	}
	return &Service{cfg: cfg}, nil
}

// Gateway is a gateway as clients see it.
type Gateway struct {
	ID        string     `json:"id"`
	Region    string     `json:"region"`
	Endpoint  string     `json:"endpoint"`
	PublicKey string     `json:"public_key"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
}

// ValidateRegion checks a region name: 1 to 32 of [a-z0-9-]. A bad one is
// Invalid with field "region".
func ValidateRegion(r string) (string, error) {
	r = strings.ToLower(strings.TrimSpace(r))
	if r == "" || len(r) > 32 || strings.Trim(r, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return "", errs.Field(errs.Invalid, "region", "region must be 1 to 32 characters of a-z, 0-9 and -")
	}
	return r, nil
}

// ValidateEndpoint checks a HOST:PORT endpoint that clients will dial. A
// bad one is Invalid with field "endpoint".
func ValidateEndpoint(ep string) (string, error) {
	host, port, err := net.SplitHostPort(strings.TrimSpace(ep))
	if err != nil || host == "" || len(host) > 253 {
		return "", errs.Field(errs.Invalid, "endpoint", "endpoint must be HOST:PORT")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", errs.Field(errs.Invalid, "endpoint", "endpoint port must be 1 to 65535")
	}
	if strings.ContainsAny(host, " /\\@") {
		return "", errs.Field(errs.Invalid, "endpoint", "endpoint host is not a valid host name or address")
	}
	return net.JoinHostPort(host, port), nil
}

// Add creates a gateway record and returns it with its one-time enrollment
// token, which is shown only here.
func (s *Service) Add(ctx context.Context, region, endpoint string) (*Gateway, string, error) {
	region, err := ValidateRegion(region)
	if err != nil {
		return nil, "", err
	}
	endpoint, err = ValidateEndpoint(endpoint)
	if err != nil {
		return nil, "", err
	}
	id, err := ident.New(s.cfg.Rand, "gw")
	if err != nil {
		return nil, "", err
	}
	tok, hash, err := secret.NewToken(s.cfg.Rand, "nne")
	if err != nil {
		return nil, "", err
	}
	g := &store.Gateway{ID: id, Region: region, Endpoint: endpoint, EnrollHash: hash, CreatedAt: s.cfg.Clock()}
	if err := s.cfg.Store.CreateGateway(ctx, g); err != nil {
		return nil, "", err
	}
	s.cfg.Logger.Info("gateway added", "gateway", id, "region", region)
	return &Gateway{ID: id, Region: region, Endpoint: endpoint}, tok, nil
}

// Enroll consumes a one-time token, records the gateway's public key and
// returns its long-lived credential. A used or unknown token is
// Unauthenticated.
func (s *Service) Enroll(ctx context.Context, req gwproto.EnrollRequest) (*gwproto.EnrollResponse, error) {
	key, err := wgkey.ParsePublic(req.PublicKey)
	if err != nil {
		e := errs.Wrap(errs.Invalid, err, "public_key must be a base64 WireGuard public key")
		e.Field = "public_key"
		return nil, e
	}
	if req.Token == "" || len(req.Token) > 256 {
		return nil, errs.E(errs.Unauthenticated, "invalid enrollment token")
	}
	cred, credHash, err := secret.NewToken(s.cfg.Rand, "nng")
	if err != nil {
		return nil, err
	}
	g, err := s.cfg.Store.EnrollGateway(ctx, secret.Hash(req.Token), key.String(), credHash)
	if err != nil {
		if errs.Is(err, errs.Unauthenticated) || errs.Is(err, errs.NotFound) {
			return nil, errs.E(errs.Unauthenticated, "invalid or already used enrollment token")
		}
		return nil, err
	}
	s.cfg.Logger.Info("gateway enrolled", "gateway", g.ID)
	return &gwproto.EnrollResponse{ID: g.ID, Region: g.Region, Endpoint: g.Endpoint, Credential: cred}, nil
}

// Authenticate returns the gateway that credential belongs to, and records
// that it was seen.
func (s *Service) Authenticate(ctx context.Context, credential string) (*store.Gateway, error) {
	if credential == "" || len(credential) > 256 {
		return nil, errs.E(errs.Unauthenticated, "missing or invalid gateway credential")
	}
	g, err := s.cfg.Store.GatewayByCredential(ctx, secret.Hash(credential))
	if errs.Is(err, errs.NotFound) {
		return nil, errs.E(errs.Unauthenticated, "missing or invalid gateway credential")
	}
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Store.TouchGateway(ctx, g.ID, s.cfg.Clock()); err != nil {
		return nil, err
	}
	return g, nil
}

// List returns every gateway. Gateways not yet enrolled have no public key.
func (s *Service) List(ctx context.Context) ([]Gateway, error) {
	gs, err := s.cfg.Store.Gateways(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Gateway, 0, len(gs))
	for _, g := range gs {
		v := Gateway{ID: g.ID, Region: g.Region, Endpoint: g.Endpoint, PublicKey: g.PublicKey}
		if g.LastSeen != nil {
			t := g.LastSeen.UTC()
			v.LastSeen = &t
		}
		out = append(out, v)
	}
	return out, nil
}

// Enrolled returns the gateways that have enrolled (and so have a public
// key a client configuration can name), oldest first.
func (s *Service) Enrolled(ctx context.Context) ([]Gateway, error) {
	gws, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	out := gws[:0]
	for _, g := range gws {
		if g.PublicKey != "" {
			out = append(out, g)
		}
	}
	return out, nil
}
