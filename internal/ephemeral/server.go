package ephemeral

import (
	"context"
	"crypto/mlkem"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// ErrNotDevice is returned by a ServerConfig.Device function for an address
// that no admitted device's tunnel holds.
var ErrNotDevice = errors.New("ephemeral: not a device's tunnel address")

// ErrRefused is returned by a ServerConfig.Install function that will not
// install the ephemeral key (in use, or no room).
var ErrRefused = errors.New("ephemeral: ephemeral peer refused")

// ServerConfig configures a Server.
type ServerConfig struct {
	// Gateway is the gateway's WireGuard public key. Required.
	Gateway wgkey.PublicKey
	// Device returns the long-term key of the device whose tunnel holds
	// the tunnel address addr: the peer WireGuard accepted the
	// connection's packets from. It returns ErrNotDevice if there is none.
	// Required.
	Device func(addr netip.Addr) (wgkey.PublicKey, error)
	// Install makes ephemeral an alias of device with psk: the gateway
	// accepts ephemeral's handshakes as the device's, with psk, from now
	// on. It returns ErrRefused (or an error wrapping it) when it will
	// not. Required.
	Install func(device, ephemeral wgkey.PublicKey, psk PSK) error
	// Timeout bounds one exchange; 0 means 10 s.
	Timeout time.Duration
	// MaxConns bounds the exchanges served at once; 0 means 64. A
	// connection beyond it is closed unanswered.
	MaxConns int
}

// Stats are a Server's counts since it was created. They are global, never
// per client.
type Stats struct {
	Installed uint64 // ephemeral peers installed
	Refused   uint64 // requests answered with an error frame
	Failed    uint64 // connections dropped: unreadable, timed out, or over MaxConns
}

// Server serves the ephemeral-peer protocol. It logs nothing and keeps
// nothing but its counters; what it learns goes to Install. It is safe
// for concurrent use.
type Server struct {
	cfg  ServerConfig
	sem  chan struct{}
	wg   sync.WaitGroup
	stat struct{ installed, refused, failed atomic.Uint64 }
}

// NewServer returns a Server for cfg.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Gateway.IsZero() || cfg.Device == nil || cfg.Install == nil {
		return nil, errors.New("ephemeral: NewServer needs Gateway, Device and Install")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 64
	}
	return &Server{cfg: cfg, sem: make(chan struct{}, cfg.MaxConns)}, nil
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{Installed: s.stat.installed.Load(), Refused: s.stat.refused.Load(), Failed: s.stat.failed.Load()}
}

// Serve accepts connections on ln until ctx is done or ln fails, serving
// each on its own goroutine, then closes ln and waits for the exchanges
// in progress. It returns nil when ctx ended it, otherwise the error of
// Accept.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer s.wg.Wait()
	defer ln.Close()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		select {
		case s.sem <- struct{}{}:
		default:
			s.stat.failed.Add(1)
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			s.ServeConn(c)
		}()
	}
}

// ServeConn serves one exchange on c and closes it. c's remote address
// must be the client's tunnel address.
func (s *Server) ServeConn(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(s.cfg.Timeout))
	f, err := ReadFrame(c)
	if err != nil {
		if errors.Is(err, ErrFrame) {
			s.refuse(c, CodeMalformed, "not a frame of this protocol")
			return
		}
		s.stat.failed.Add(1)
		return
	}
	out, code, msg := s.handle(f, remoteAddr(c))
	if code != 0 {
		s.refuse(c, code, msg)
		return
	}
	if _, err := c.Write(out); err != nil {
		// The ephemeral peer is installed and stays an alias until it
		// is idle: the client, which did not get the ciphertext, asks
		// again and replaces it.
		s.stat.failed.Add(1)
		return
	}
	s.stat.installed.Add(1)
}

// handle answers frame f from tunnel address from: the response frame, or
// an error code and message.
func (s *Server) handle(f Frame, from netip.Addr) ([]byte, Code, string) {
	if f.Version != Version {
		return nil, CodeVersion, "this gateway speaks version 1"
	}
	if f.Type != TypeRequest {
		return nil, CodeMalformed, "expected a request"
	}
	req, err := ParseRequest(f.Body)
	if err != nil {
		return nil, CodeMalformed, "malformed request"
	}
	ek, err := mlkem.NewEncapsulationKey1024(req.EncapsulationKey)
	if err != nil {
		return nil, CodeMalformed, "invalid ML-KEM-1024 encapsulation key"
	}
	device, err := s.cfg.Device(from)
	if err != nil {
		return nil, CodeNotDevice, "the connection did not come through a device's tunnel"
	}
	if req.Ephemeral.Equal(device) || req.Ephemeral.Equal(s.cfg.Gateway) {
		return nil, CodeMalformed, "the ephemeral key must be a new key"
	}
	shared, ct := ek.Encapsulate()
	psk, err := DerivePSK(shared, Transcript{
		Device: device, Gateway: s.cfg.Gateway, Ephemeral: req.Ephemeral,
		EncapsulationKey: req.EncapsulationKey, Ciphertext: ct,
	})
	clear(shared)
	if err != nil {
		return nil, CodeInternal, "gateway error"
	}
	if err := s.cfg.Install(device, req.Ephemeral, psk); err != nil {
		if errors.Is(err, ErrRefused) {
			return nil, CodeRefused, "the ephemeral key was refused"
		}
		return nil, CodeInternal, "gateway error"
	}
	return AppendFrame(nil, TypeResponse, ct), 0, ""
}

// refuse answers c with an error frame.
func (s *Server) refuse(c net.Conn, code Code, msg string) {
	s.stat.refused.Add(1)
	// The version an unsupported frame gets back is ours, so that the
	// client can tell what to speak.
	_, _ = c.Write(AppendFrame(nil, TypeError, ErrorBody(code, msg)))
}

// remoteAddr returns c's remote IP address, or the zero Addr.
func remoteAddr(c net.Conn) netip.Addr {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}
		}
		return ap.Addr().Unmap()
	}
}
