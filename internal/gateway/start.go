package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"syscall"

	"github.com/nitronet/nitronet/internal/gateway/control"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/udptcp"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// ErrPortInUse is wrapped by Run's error when another socket holds the
// WireGuard UDP port. Run has then saved nothing and asked nothing of the
// control server.
var ErrPortInUse = errors.New("UDP port already in use")

// ErrTCPPortInUse is wrapped by Run's error when another socket holds
// Config.TCPPort. As with ErrPortInUse, nothing was saved or asked.
var ErrTCPPortInUse = errors.New("TCP port already in use")

// ErrCredentialRefused is wrapped by Run's error when the control server
// does not accept the credential in the key file at start (HTTP 401 to the
// start-up report): the gateway was removed, or the key file belongs to
// another control server. A gateway with Config.Enroll enrolls again
// instead; one that enrolls with a token must be enrolled anew (a new
// token, and the key file removed). Run has then changed nothing.
var ErrCredentialRefused = errors.New("the control server refused the gateway's credential")

// Endpoint returns the HOST:PORT clients dial, as the gateway's record holds
// it after its start-up report, or "" before Ready (or if the control server
// predates start-up reports).
func (g *Gateway) Endpoint() string {
	select {
	case <-g.ready:
		return g.record.Endpoint
	default:
		return ""
	}
}

// loadIdentity returns the key and credential in the key file, or a new key
// (in memory only) when there is none. It fails early if the gateway is not
// enrolled and has no way to enroll.
func (g *Gateway) loadIdentity() (identity, error) {
	var id identity
	if g.cfg.KeyFile != "" {
		loaded, err := loadKeyFile(g.cfg.KeyFile)
		switch {
		case err == nil:
			id = loaded
		case isNotExist(err):
		default:
			return identity{}, fmt.Errorf("gateway: %w", err)
		}
	}
	if id.Credential == "" && g.cfg.Token == "" && g.cfg.Enroll == nil {
		return identity{}, errors.New("gateway: not enrolled and no enrollment token given")
	}
	if id.Key.IsZero() {
		key, err := wgkey.Generate(g.cfg.Rand)
		if err != nil {
			return identity{}, fmt.Errorf("gateway: %w", err)
		}
		id.Key = key
	}
	return id, nil
}

// deviceError describes a failure of op, configuring the device or
// bringing it up. Either may bind the port: a TUN that reports itself up
// brings the device up at once.
func (g *Gateway) deviceError(op string, err error) error {
	var le *udptcp.ListenError
	switch {
	case errors.As(err, &le) && errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("gateway: TCP port %d: %w", le.Port, ErrTCPPortInUse)
	case errors.As(err, &le):
		return fmt.Errorf("gateway: %s: %w", op, err)
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("gateway: UDP port %d: %w", g.cfg.ListenPort, ErrPortInUse)
	}
	return fmt.Errorf("gateway: %s: %w", op, err)
}

// register enrolls the gateway if id has no credential, then sends its
// start-up report. A credential the server refuses is enrolled again
// through Config.Enroll, with the same key; without it, register fails
// with ErrCredentialRefused. It sets g.id and g.record.
func (g *Gateway) register(ctx context.Context, id identity) error {
	fresh := id.Credential == ""
	for {
		if fresh {
			var err error
			if id, err = g.enroll(ctx, identity{Key: id.Key}); err != nil {
				return err
			}
		}
		g.id = id
		g.client.SetCredential(id.Credential)
		err := g.hello(ctx)
		switch {
		case !errors.Is(err, ErrCredentialRefused):
			return err
		case fresh:
			return fmt.Errorf("gateway: %w just after enrolling", err)
		case g.cfg.Enroll == nil:
			return fmt.Errorf("gateway: %w (key file %s)", err, g.cfg.KeyFile)
		}
		g.log.Warn("the control server refused this gateway's credential (the gateway was removed, or the key file is another server's): enrolling it again with the same key",
			"gateway_id", id.ID, "key_file", g.cfg.KeyFile)
		fresh = true
	}
}

// enroll gets a credential for id.Key, from Config.Enroll or with the
// token (retrying while the server is unreachable), and saves it to the key
// file. The key alone is saved first, so that an unwritable key file fails
// before the token is spent, and a restart after an interrupted Config.Enroll
// presents the same key.
func (g *Gateway) enroll(ctx context.Context, id identity) (identity, error) {
	if g.cfg.KeyFile != "" {
		if err := saveKeyFile(g.cfg.KeyFile, identity{Key: id.Key}); err != nil {
			return identity{}, fmt.Errorf("gateway: %w", err)
		}
	}
	resp, err := g.enrollment(ctx, id.Key.Public())
	if err != nil {
		return identity{}, err
	}
	id.Credential, id.ID, id.Region = resp.Credential, resp.ID, resp.Region
	g.client.SetCredential(id.Credential)
	g.log.Info("enrolled", "gateway_id", id.ID, "region", id.Region)
	if g.cfg.KeyFile != "" {
		if err := saveKeyFile(g.cfg.KeyFile, id); err != nil {
			return identity{}, fmt.Errorf("gateway: %w", err)
		}
	}
	return id, nil
}

func (g *Gateway) enrollment(ctx context.Context, pub wgkey.PublicKey) (gwproto.EnrollResponse, error) {
	if g.cfg.Enroll != nil {
		resp, err := g.cfg.Enroll(ctx, pub)
		if err != nil {
			return gwproto.EnrollResponse{}, fmt.Errorf("gateway: enrollment: %w", err)
		}
		return resp, nil
	}
	bo := g.backoff()
	for {
		resp, err := g.client.Enroll(ctx, g.cfg.Token, pub)
		if err == nil {
			return resp, nil
		}
		var se *control.StatusError
		if errors.As(err, &se) && se.Permanent() {
			return gwproto.EnrollResponse{}, fmt.Errorf("gateway: enrollment refused: %w", err)
		}
		g.log.Warn("enrollment failed, retrying", "err", err.Error())
		if !sleep(ctx, bo.Next()) {
			return gwproto.EnrollResponse{}, ctx.Err()
		}
	}
}

// hello sends the start-up report (retrying while the server is
// unreachable) and logs when clients dial a port other than the bound one.
func (g *Gateway) hello(ctx context.Context) error {
	port := int(g.bind.Port())
	req := gwproto.HelloRequest{ListenPort: port, Region: g.cfg.Region}
	if g.tcp != nil {
		req.TCPPort = g.tcp.TCPPort()
	}
	req.Relays = g.relayPorts()
	if g.cfg.Endpoint != "" {
		ep, err := gwproto.ResolveEndpoint(g.cfg.Endpoint, port)
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		req.Endpoint = ep
	}
	bo := g.backoff()
	for {
		resp, err := g.client.Hello(ctx, req)
		if err == nil {
			g.record = resp
			break
		}
		var se *control.StatusError
		if errors.As(err, &se) && se.Status == http.StatusUnauthorized {
			return ErrCredentialRefused
		}
		if errors.As(err, &se) && se.Status == http.StatusNotFound {
			g.log.Warn("the control server does not take start-up reports; the gateway's record is unchanged")
			g.record = gwproto.HelloResponse{ID: g.id.ID, Region: g.id.Region, TCPPort: req.TCPPort, Relays: req.Relays}
			return nil
		}
		if errors.As(err, &se) && se.Permanent() {
			return fmt.Errorf("gateway: start-up report refused: %w", err)
		}
		g.log.Warn("start-up report failed, retrying", "err", err.Error())
		if !sleep(ctx, bo.Next()) {
			return ctx.Err()
		}
	}
	if g.id.ID == "" {
		g.id.ID = g.record.ID
	}
	if len(g.record.Changed) > 0 {
		g.log.Info("gateway record updated", "changed", g.record.Changed, "region", g.record.Region, "endpoint", g.record.Endpoint,
			"tcp_port", g.record.TCPPort, "relays", len(g.record.Relays))
	}
	g.logPortForward(port, req.Endpoint != "")
	return nil
}

// logPortForward says so when the endpoint's port is not the bound port:
// right only behind a port forward. It is a warning unless this gateway
// was configured with that endpoint.
func (g *Gateway) logPortForward(port int, configured bool) {
	_, ps, err := net.SplitHostPort(g.record.Endpoint)
	if err != nil || ps == strconv.Itoa(port) {
		return
	}
	if configured {
		g.log.Info("clients dial another port than the one bound: expecting a port forward", "endpoint", g.record.Endpoint, "port", port)
		return
	}
	g.log.Warn("the gateway's recorded endpoint names another port than the one bound: clients reach it only through a port forward; give the gateway its endpoint to change that",
		"endpoint", g.record.Endpoint, "port", port)
}

// relayPorts returns the multihop relay ports to report, by port.
func (g *Gateway) relayPorts() []gwproto.Relay {
	if g.relay == nil {
		return nil
	}
	var out []gwproto.Relay
	for exit, port := range g.relay.Ports() {
		out = append(out, gwproto.Relay{Exit: exit, Port: port})
	}
	slices.SortFunc(out, func(a, b gwproto.Relay) int { return a.Port - b.Port })
	return out
}
