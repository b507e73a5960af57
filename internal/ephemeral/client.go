package ephemeral

import (
	"context"
	"crypto/mlkem"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// ErrUnsupported is wrapped by Exchange's error when the gateway does not
// offer ephemeral peers: nothing listens, the connection closes without an
// answer, or the gateway speaks another version.
var ErrUnsupported = errors.New("the gateway does not offer quantum-resistant tunnels")

// RefusedError is Exchange's error when the gateway answered with an error
// frame.
type RefusedError struct {
	Code    Code
	Message string // the gateway's message, for the user
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the gateway refused the ephemeral peer (%s): %s", e.Code, e.Message)
}

// Result is what an exchange gives the client: the key and pre-shared key
// to switch its tunnel to. Never log it.
type Result struct {
	Key wgkey.PrivateKey
	PSK PSK
}

// Dialer opens a TCP connection through the tunnel.
type Dialer func(ctx context.Context, network, address string) (net.Conn, error)

// ClientConfig is what Exchange needs.
type ClientConfig struct {
	// Dial opens the connection through the classical tunnel. Required.
	Dial Dialer
	// Address is the gateway's service address, HOST:PORT, e.g.
	// 100.64.0.1:1337. Required.
	Address string
	// Device is the device's long-term public key, the one the tunnel
	// runs on, and Gateway the gateway's public key.
	Device, Gateway wgkey.PublicKey
	// Rand is the randomness for the ephemeral WireGuard key; nil means
	// crypto/rand. (ML-KEM draws its own from crypto/rand.)
	Rand io.Reader
	// Timeout bounds the exchange if ctx has no deadline; 0 means 10 s.
	Timeout time.Duration
}

// Exchange runs one exchange: it makes a fresh WireGuard key and ML-KEM-1024
// key pair, sends the request, decapsulates the gateway's ciphertext and
// derives the pre-shared key. A gateway that does not answer, refuses the
// connection or speaks another version gives an error wrapping
// ErrUnsupported; one that refuses the request a *RefusedError.
func Exchange(ctx context.Context, cfg ClientConfig) (Result, error) {
	if cfg.Dial == nil || cfg.Address == "" {
		return Result{}, errors.New("ephemeral: Exchange needs Dial and Address")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	key, err := wgkey.Generate(cfg.Rand)
	if err != nil {
		return Result{}, fmt.Errorf("ephemeral: %w", err)
	}
	dk, err := mlkem.GenerateKey1024()
	if err != nil {
		return Result{}, fmt.Errorf("ephemeral: %w", err)
	}
	req := Request{Ephemeral: key.Public(), EncapsulationKey: dk.EncapsulationKey().Bytes()}

	c, err := cfg.Dial(ctx, "tcp", cfg.Address)
	if err != nil {
		return Result{}, fmt.Errorf("%w (no service on the gateway's tunnel address: %v)", ErrUnsupported, classify(err))
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write(AppendFrame(nil, TypeRequest, req.Marshal())); err != nil {
		return Result{}, fmt.Errorf("%w (send: %v)", ErrUnsupported, classify(err))
	}
	f, err := ReadFrame(c)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, ErrFrame):
		return Result{}, fmt.Errorf("%w (the connection closed without an answer)", ErrUnsupported)
	case err != nil:
		return Result{}, fmt.Errorf("%w (%v)", ErrUnsupported, classify(err))
	}
	ct, err := answer(f)
	if err != nil {
		return Result{}, err
	}
	shared, err := dk.Decapsulate(ct)
	if err != nil {
		return Result{}, fmt.Errorf("ephemeral: decapsulate: %w", err)
	}
	psk, err := DerivePSK(shared, Transcript{
		Device: cfg.Device, Gateway: cfg.Gateway, Ephemeral: req.Ephemeral,
		EncapsulationKey: req.EncapsulationKey, Ciphertext: ct,
	})
	clear(shared)
	if err != nil {
		return Result{}, err
	}
	return Result{Key: key, PSK: psk}, nil
}

// answer returns the ciphertext of a response frame, or the error an error
// frame carries.
func answer(f Frame) ([]byte, error) {
	if f.Type == TypeError {
		code, msg, err := ParseError(f.Body)
		if err != nil {
			return nil, fmt.Errorf("%w (%v)", ErrUnsupported, err)
		}
		if code == CodeVersion || f.Version != Version {
			return nil, fmt.Errorf("%w (it speaks version %d, this client %d)", ErrUnsupported, f.Version, Version)
		}
		return nil, &RefusedError{Code: code, Message: msg}
	}
	if f.Version != Version {
		return nil, fmt.Errorf("%w (it speaks version %d, this client %d)", ErrUnsupported, f.Version, Version)
	}
	if f.Type != TypeResponse || len(f.Body) != ResponseSize {
		return nil, errors.New("ephemeral: the gateway sent a malformed response")
	}
	return f.Body, nil
}

// classify names a network failure without its addresses.
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			return oe.Err.Error()
		}
		return "connection failed"
	}
}
