// Package control is the gateway's HTTP client for the control server's
// gateway API, as defined in package gwproto.
//
// Errors returned by this package never embed request URLs or network
// addresses, so they are safe to log verbatim: see Describe.
package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// maxBody bounds every response body the gateway reads.
const maxBody = 32 << 20

// StatusError is returned when the control server answers with an
// unexpected HTTP status.
type StatusError struct {
	Op     string // "enroll", "hello", "peers" or "sessions"
	Status int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("control %s: HTTP %d", e.Op, e.Status)
}

// Permanent reports whether retrying the same request cannot help: a 4xx
// status other than 408 (timeout) and 429 (rate limited).
func (e *StatusError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// Client talks to one control server. Call SetCredential (or Enroll) before
// Peers and ReportSessions. A Client is safe for concurrent use.
type Client struct {
	base *url.URL
	hc   *http.Client

	mu   sync.RWMutex
	cred string
}

// New returns a Client for the control server at serverURL (scheme and host,
// optionally a path prefix). A nil hc means a new http.Client without an
// overall timeout; every request is bounded by its context instead.
func New(serverURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("control: server URL must be an absolute http(s) URL")
	}
	if hc == nil {
		hc = &http.Client{}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, hc: hc}, nil
}

// SetCredential sets the bearer credential used by Peers and ReportSessions.
func (c *Client) SetCredential(cred string) {
	c.mu.Lock()
	c.cred = cred
	c.mu.Unlock()
}

func (c *Client) credential() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cred
}

// Enroll consumes the one-time token, registering pub as the gateway's key.
// On success it also sets the returned credential on c.
func (c *Client) Enroll(ctx context.Context, token string, pub wgkey.PublicKey) (gwproto.EnrollResponse, error) {
	var resp gwproto.EnrollResponse
	req := gwproto.EnrollRequest{Token: token, PublicKey: pub.String()}
	if err := c.do(ctx, "enroll", http.MethodPost, "/api/v1/gateway/enroll", nil, req, &resp, false); err != nil {
		return gwproto.EnrollResponse{}, err
	}
	if resp.Credential == "" {
		return gwproto.EnrollResponse{}, errors.New("control enroll: empty credential in response")
	}
	c.SetCredential(resp.Credential)
	return resp, nil
}

// Peers long-polls the peer feed from cursor since, asking the server to
// hold the request up to wait (rounded to whole seconds, at least 1).
func (c *Client) Peers(ctx context.Context, since int64, wait time.Duration) (gwproto.PeerUpdate, error) {
	secs := int(wait / time.Second)
	if secs < 1 {
		secs = 1
	}
	q := url.Values{}
	q.Set("since", strconv.FormatInt(since, 10))
	q.Set("wait", strconv.Itoa(secs))
	// Allow the server its full hold time plus a margin for the answer.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+15*time.Second)
	defer cancel()
	var upd gwproto.PeerUpdate
	if err := c.do(ctx, "peers", http.MethodGet, "/api/v1/gateway/peers", q, nil, &upd, true); err != nil {
		return gwproto.PeerUpdate{}, err
	}
	return upd, nil
}

// ReportSessions posts a batch of session intervals. The server answers 204.
func (c *Client) ReportSessions(ctx context.Context, rep gwproto.SessionReport) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return c.do(ctx, "sessions", http.MethodPost, "/api/v1/gateway/sessions", nil, rep, nil, true)
}

func (c *Client) do(ctx context.Context, op, method, path string, q url.Values, in, out any, auth bool) error {
	u := *c.base
	u.Path += path
	if q != nil {
		u.RawQuery = q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("control %s: encode: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("control %s: build request", op)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.credential())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return &TransportError{Op: op, err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return &StatusError{Op: op, Status: resp.StatusCode}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
		if ctx.Err() != nil {
			return &TransportError{Op: op, err: ctx.Err()}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &TransportError{Op: op, err: err}
		}
		return fmt.Errorf("control %s: malformed response", op)
	}
	return nil
}

// TransportError is a failure to reach the control server or to read its
// answer. Its message names only a class of failure, never an address.
type TransportError struct {
	Op  string
	err error
}

func (e *TransportError) Error() string { return "control " + e.Op + ": " + classify(e.err) }

// Unwrap returns the underlying error. Note that it may contain the server
// address; log Error(), not the unwrapped value.
func (e *TransportError) Unwrap() error { return e.err }

func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return "unreachable"
	}
}
