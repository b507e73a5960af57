// Package gateways manages gateway records: creation with a one-time
// enrollment token, enrollment, gateway authentication and removal.
// Adding, listing and removing gateways are staff actions
// (staff.ActGatewayManage, staff.ActGatewayView), authorised and audited
// here whichever front end asks.
package gateways

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/secret"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// Config holds the service's dependencies.
type Config struct {
	Store  store.Store
	Audit  staff.Auditor
	Logger *slog.Logger
	Clock  func() time.Time
	Rand   io.Reader
}

// Service manages gateways. It is safe for concurrent use.
type Service struct{ cfg Config }

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Audit == nil || cfg.Logger == nil || cfg.Clock == nil || cfg.Rand == nil {
		return nil, fmt.Errorf("gateways: missing dependency")
	}
	return &Service{cfg: cfg}, nil
}

// Gateway is a gateway as clients see it.
type Gateway struct {
	ID       string `json:"id"`
	Region   string `json:"region"`
	Endpoint string `json:"endpoint"`
	// TCPPort is the port on Endpoint's host where the gateway also
	// takes WireGuard over TCP, or 0 if it offers none.
	TCPPort int `json:"tcp_port,omitempty"`
	// Relays are the gateway's multihop relay ports: a stock WireGuard
	// app that dials Endpoint's host on a relay's port reaches that
	// relay's exit gateway through this one (see devices.WireGuard).
	Relays    []Relay    `json:"relays,omitempty"`
	PublicKey string     `json:"public_key"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
}

// Relay is a multihop relay port of an entry gateway.
type Relay struct {
	// Exit is the id of the exit gateway the port forwards to.
	Exit string `json:"exit"`
	// Port is the UDP port on the entry's endpoint host.
	Port int `json:"port"`
}

// RelayPort returns the port of g that relays to the gateway with id
// exit, and whether there is one.
func (g Gateway) RelayPort(exit string) (int, bool) {
	for _, r := range g.Relays {
		if r.Exit == exit {
			return r.Port, true
		}
	}
	return 0, false
}

// ValidateRegion checks a region name: 1 to 32 of [a-z0-9-] (see
// gwproto.NormalizeRegion). A bad one is Invalid with field "region".
func ValidateRegion(r string) (string, error) {
	r, err := gwproto.NormalizeRegion(r)
	if err != nil {
		return "", errs.Field(errs.Invalid, "region", "%s", err.Error())
	}
	return r, nil
}

// ValidateEndpoint checks a HOST:PORT endpoint that clients will dial (see
// gwproto.ResolveEndpoint). A bad one is Invalid with field "endpoint".
func ValidateEndpoint(ep string) (string, error) {
	ep, err := gwproto.ResolveEndpoint(ep, 0)
	if err != nil {
		return "", errs.Field(errs.Invalid, "endpoint", "%s", err.Error())
	}
	return ep, nil
}

// Add creates a gateway record and returns it with its one-time enrollment
// token, which is shown only here. by must be allowed
// staff.ActGatewayManage (an admin, or staff.System for the in-process
// gateway of `nitronet serve --gateway`); the addition is audited.
func (s *Service) Add(ctx context.Context, by staff.Principal, region, endpoint string) (*Gateway, string, error) {
	if err := staff.Authorize(by, staff.ActGatewayManage); err != nil {
		return nil, "", err
	}
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
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActGatewayManage, id,
		fmt.Sprintf("added gateway in region %s at %s", region, endpoint)); err != nil {
		return nil, "", err
	}
	s.cfg.Logger.Info("gateway added", "gateway", id, "region", region)
	return &Gateway{ID: id, Region: region, Endpoint: endpoint}, tok, nil
}

// Remove deletes gateway id and returns it as it was. Its credential stops
// authenticating at once: the gateway can no longer read the peer feed or
// report sessions (a poll already waiting is answered Unauthenticated).
// Clients keep any configuration naming it, which stops working. by must
// be allowed staff.ActGatewayManage; the removal is audited. An unknown id
// is NotFound.
func (s *Service) Remove(ctx context.Context, by staff.Principal, id string) (*Gateway, error) {
	if err := staff.Authorize(by, staff.ActGatewayManage); err != nil {
		return nil, err
	}
	id = strings.TrimSpace(id)
	if !ident.Valid(id, "gw") {
		return nil, errs.E(errs.NotFound, "no gateway %q", id)
	}
	g, err := s.cfg.Store.DeleteGateway(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActGatewayManage, g.ID,
		fmt.Sprintf("removed gateway in region %s at %s", g.Region, g.Endpoint)); err != nil {
		return nil, err
	}
	s.cfg.Logger.Info("gateway removed", "gateway", g.ID)
	return view(g), nil
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

// view is g as clients and staff see it.
func view(g *store.Gateway) *Gateway {
	v := &Gateway{ID: g.ID, Region: g.Region, Endpoint: g.Endpoint, TCPPort: g.TCPPort, PublicKey: g.PublicKey}
	for _, r := range g.Relays {
		v.Relays = append(v.Relays, Relay{Exit: r.Exit, Port: r.Port})
	}
	if g.LastSeen != nil {
		t := g.LastSeen.UTC()
		v.LastSeen = &t
	}
	return v
}

// List returns every gateway, oldest first, for signed-in users choosing
// one. Gateways not yet enrolled have no public key.
func (s *Service) List(ctx context.Context) ([]Gateway, error) {
	gs, err := s.cfg.Store.Gateways(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Gateway, 0, len(gs))
	for i := range gs {
		out = append(out, *view(&gs[i]))
	}
	return out, nil
}

// StaffList returns every gateway, oldest first, for by, who must be
// allowed staff.ActGatewayView; the listing is audited.
func (s *Service) StaffList(ctx context.Context, by staff.Principal) ([]Gateway, error) {
	if err := staff.Authorize(by, staff.ActGatewayView); err != nil {
		return nil, err
	}
	gs, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActGatewayView, "gateways",
		fmt.Sprintf("listed %d gateway(s)", len(gs))); err != nil {
		return nil, err
	}
	return gs, nil
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

// Hello records what gateway g reported about itself at start (see
// gwproto.HelloRequest): a non-empty Region or Endpoint replaces the
// record's, so that the record follows the gateway's own settings. It is
// the gateway's report, authenticated by its credential, and can change
// only its own record: not a staff action. The TCP port is recorded as
// reported, 0 (none) included. A change is logged with the values before
// and after; an invalid port, region or endpoint is Invalid.
func (s *Service) Hello(ctx context.Context, g *store.Gateway, req gwproto.HelloRequest) (*gwproto.HelloResponse, error) {
	if req.ListenPort < 1 || req.ListenPort > 65535 {
		return nil, errs.Field(errs.Invalid, "listen_port", "listen_port must be 1 to 65535")
	}
	if req.TCPPort < 0 || req.TCPPort > 65535 {
		return nil, errs.Field(errs.Invalid, "tcp_port", "tcp_port must be 0 to 65535")
	}
	var u store.GatewayUpdate
	var changed []string
	logArgs := []any{"gateway", g.ID}
	if req.Region != "" {
		region, err := ValidateRegion(req.Region)
		if err != nil {
			return nil, err
		}
		if region != g.Region {
			u.Region = &region
			changed = append(changed, "region")
			logArgs = append(logArgs, "region_was", g.Region, "region", region)
		}
	}
	if req.Endpoint != "" {
		endpoint, err := ValidateEndpoint(req.Endpoint)
		if err != nil {
			return nil, err
		}
		if endpoint != g.Endpoint {
			u.Endpoint = &endpoint
			changed = append(changed, "endpoint")
			logArgs = append(logArgs, "endpoint_was", g.Endpoint, "endpoint", endpoint)
		}
	}
	if req.TCPPort != g.TCPPort {
		u.TCPPort = &req.TCPPort
		changed = append(changed, "tcp_port")
		logArgs = append(logArgs, "tcp_port_was", g.TCPPort, "tcp_port", req.TCPPort)
	}
	relays, err := helloRelays(g.ID, req)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(relays, g.Relays) && (len(relays) > 0 || len(g.Relays) > 0) {
		u.Relays = &relays
		changed = append(changed, "relays")
		logArgs = append(logArgs, "relays_was", len(g.Relays), "relays", len(relays))
	}
	cur := g
	if len(changed) > 0 {
		var err error
		if cur, err = s.cfg.Store.UpdateGateway(ctx, g.ID, u); err != nil {
			return nil, err
		}
		s.cfg.Logger.Info("gateway record updated from its start-up report", logArgs...)
	}
	resp := &gwproto.HelloResponse{ID: cur.ID, Region: cur.Region, Endpoint: cur.Endpoint, TCPPort: cur.TCPPort, Changed: changed}
	for _, r := range cur.Relays {
		resp.Relays = append(resp.Relays, gwproto.Relay{Exit: r.Exit, Port: r.Port})
	}
	return resp, nil
}

// helloRelays checks the relay ports of a start-up report of gateway id
// and returns them in port order: each port 1 to 65535 and once, none the
// gateway's listen or TCP port, each exit an id other than the gateway's
// own. A bad one is Invalid with field "relays". The exit need not exist
// yet: a configuration through the relay is handed out only for an
// enrolled exit.
func helloRelays(id string, req gwproto.HelloRequest) ([]store.Relay, error) {
	out := make([]store.Relay, 0, len(req.Relays))
	for _, r := range req.Relays {
		if r.Port < 1 || r.Port > 65535 || r.Port == req.ListenPort || r.Port == req.TCPPort {
			return nil, errs.Field(errs.Invalid, "relays", "relay port %d must be 1 to 65535 and not the gateway's own", r.Port)
		}
		if r.Exit == "" || r.Exit == id || len(r.Exit) > 64 || strings.ContainsAny(r.Exit, "=, ") {
			return nil, errs.Field(errs.Invalid, "relays", "relay exit must be another gateway's id")
		}
		out = append(out, store.Relay{Exit: r.Exit, Port: r.Port})
	}
	slices.SortFunc(out, func(a, b store.Relay) int { return a.Port - b.Port })
	for i := 1; i < len(out); i++ {
		if out[i].Port == out[i-1].Port {
			return nil, errs.Field(errs.Invalid, "relays", "relay port %d given twice", out[i].Port)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Provision enrolls the gateway that `nitronet serve --gateway` runs in
// its own process, which needs no token: it creates the record for key
// pub, already enrolled, in region at endpoint, and returns its
// credential. Called again with the same key (a start that was stopped
// before the gateway saved its credential) it gives that record a new
// credential instead of making a second one. by must be allowed
// staff.ActGatewayManage: it is staff.System's action, called only in
// process, never over the network, and audited as such.
func (s *Service) Provision(ctx context.Context, by staff.Principal, region, endpoint string, pub wgkey.PublicKey) (*gwproto.EnrollResponse, error) {
	if err := staff.Authorize(by, staff.ActGatewayManage); err != nil {
		return nil, err
	}
	region, err := ValidateRegion(region)
	if err != nil {
		return nil, err
	}
	endpoint, err = ValidateEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	cred, credHash, err := secret.NewToken(s.cfg.Rand, "nng")
	if err != nil {
		return nil, err
	}
	gs, err := s.cfg.Store.Gateways(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		if g.PublicKey != pub.String() {
			continue
		}
		u, err := s.cfg.Store.UpdateGateway(ctx, g.ID, store.GatewayUpdate{Region: &region, Endpoint: &endpoint, CredentialHash: credHash})
		if err != nil {
			return nil, err
		}
		if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActGatewayManage, u.ID,
			fmt.Sprintf("gave the in-process gateway a new credential, in region %s at %s", u.Region, u.Endpoint)); err != nil {
			return nil, err
		}
		s.cfg.Logger.Info("in-process gateway given a new credential", "gateway", u.ID)
		return &gwproto.EnrollResponse{ID: u.ID, Region: u.Region, Endpoint: u.Endpoint, Credential: cred}, nil
	}
	id, err := ident.New(s.cfg.Rand, "gw")
	if err != nil {
		return nil, err
	}
	g := &store.Gateway{ID: id, Region: region, Endpoint: endpoint, PublicKey: pub.String(),
		CredentialHash: credHash, CreatedAt: s.cfg.Clock()}
	if err := s.cfg.Store.CreateGateway(ctx, g); err != nil {
		return nil, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActGatewayManage, id,
		fmt.Sprintf("added the in-process gateway in region %s at %s", region, endpoint)); err != nil {
		return nil, err
	}
	s.cfg.Logger.Info("in-process gateway added", "gateway", id, "region", region, "endpoint", endpoint)
	return &gwproto.EnrollResponse{ID: id, Region: region, Endpoint: endpoint, Credential: cred}, nil
}
