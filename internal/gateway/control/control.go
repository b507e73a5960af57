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
	"mime"
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
	base  *url.URL
	hc    *http.Client
	stall time.Duration // Stall; shorter in tests

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
	return &Client{base: u, hc: hc, stall: Stall}, nil
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

// Update is one answer of the peer feed.
type Update struct {
	Version int64 // the feed version to poll from next
	Full    bool  // a full snapshot; its peers went to the callback
	// Peers is the number of snapshot peers passed to the callback.
	Peers int64
	// Rejected counts entries of a JSON snapshot that are not valid peer
	// records; they were not passed on. A binary snapshot has none: one
	// malformed record fails the whole answer.
	Rejected int
	// Changes are the changes after the cursor, in order, when not Full.
	Changes []gwproto.Change
}

// Snapshot receives a full snapshot as Peers decodes it. Either function
// may be nil.
type Snapshot struct {
	// Begin is called once for every full snapshot, empty ones too,
	// before its first peer, with the number of peers the server expects
	// to send: a hint for sizing an index (at most
	// gwproto.DefaultMaxSnapshotPeers), 0 when the server gave none (a JSON
	// snapshot); nothing checks it.
	Begin func(expected int)
	// Peer is called with each peer, in order, as soon as it is decoded.
	// Its error stops the transfer.
	Peer func(gwproto.PeerRecord) error
}

// sink calls a Snapshot's functions: Begin at most once, and before any
// Peer; it keeps Peer's error apart from decoding errors.
type sink struct {
	snap  Snapshot
	begun bool
	err   error
}

func (s *sink) begin(expected int64) {
	if s.begun {
		return
	}
	s.begun = true
	if s.snap.Begin != nil {
		s.snap.Begin(int(expected))
	}
}

func (s *sink) peer(r gwproto.PeerRecord) error {
	s.begin(0)
	if s.snap.Peer != nil {
		s.err = s.snap.Peer(r)
	}
	return s.err
}

// Stall bounds how long a read of an answer's body may wait for data
// once the headers have arrived.
const Stall = 15 * time.Second

// Peers long-polls the peer feed from cursor since, asking the server to
// hold the request up to wait (rounded to whole seconds, at least 1). The
// server must send the headers within that time plus 15 s, and then no
// read of the body may wait longer than Stall, however long the whole
// answer takes.
//
// Peers asks for snapshots in the binary format (gwproto.SnapshotMediaType)
// and also reads JSON ones. If the answer is a full snapshot, Peers calls
// snap.Begin once, then snap.Peer with each peer as soon as it is decoded
// from the response, in order, holding no other copy, and returns an
// Update with Full set. If Peers returns an error after calling
// snap.Begin, the snapshot did not arrive whole (the answer was cut or
// malformed, or snap.Peer failed): the caller must not take what it got as
// the whole set. snap.Peer's own error is returned as it is. A change
// answer calls neither; its changes are in Changes.
func (c *Client) Peers(ctx context.Context, since int64, wait time.Duration, snap Snapshot) (Update, error) {
	secs := int(wait / time.Second)
	if secs < 1 {
		secs = 1
	}
	q := url.Values{}
	q.Set("since", strconv.FormatInt(since, 10))
	q.Set("wait", strconv.Itoa(secs))
	// The gateway's peer table drops a peer named only by its device.
	q.Set("removals", gwproto.RemovalsByDevice)
	u := *c.base
	u.Path += "/api/v1/gateway/peers"
	u.RawQuery = q.Encode()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Allow the server its full hold time plus a margin for the headers;
	// then each read of the body gets Stall.
	timer := time.AfterFunc(time.Duration(secs)*time.Second+15*time.Second, func() { cancel(errTimedOut) })
	defer timer.Stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Update{}, errors.New("control peers: build request")
	}
	req.Header.Set("Accept", gwproto.SnapshotMediaType+", application/json;q=0.5")
	req.Header.Set("Authorization", "Bearer "+c.credential())
	resp, err := c.hc.Do(req)
	if err != nil {
		return Update{}, transportError("peers", ctx, err)
	}
	defer resp.Body.Close()
	body := &stallReader{r: resp.Body, timer: timer, d: c.stall}
	if resp.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(body, maxBody))
		return Update{}, &StatusError{Op: "peers", Status: resp.StatusCode}
	}
	sk := &sink{snap: snap}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == gwproto.SnapshotMediaType {
		info, err := gwproto.DecodeSnapshot(body, 0, func(h gwproto.SnapshotHeader) error {
			sk.begin(h.Expected)
			return nil
		}, sk.peer)
		switch {
		case sk.err != nil:
			return Update{}, sk.err
		case ctx.Err() != nil || errors.Is(err, io.ErrUnexpectedEOF):
			return Update{}, transportError("peers", ctx, err)
		case err != nil:
			var se *gwproto.SnapshotError
			if errors.As(err, &se) {
				return Update{}, fmt.Errorf("control peers: malformed snapshot: %w", se)
			}
			return Update{}, transportError("peers", ctx, err)
		}
		return Update{Version: info.Version, Full: true, Peers: info.Peers}, nil
	}
	upd, err := decodeJSONUpdate(&windowReader{r: body, max: maxBody}, sk)
	switch {
	case sk.err != nil:
		return Update{}, sk.err
	case err == nil:
		return upd, nil
	case ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return Update{}, transportError("peers", ctx, err)
	default:
		return Update{}, fmt.Errorf("control peers: malformed response")
	}
}

// errTimedOut cancels a request whose answer is overdue.
var errTimedOut = fmt.Errorf("answer overdue: %w", context.DeadlineExceeded)

// transportError classifies err, preferring the reason ctx was cancelled.
func transportError(op string, ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		err = cause
	}
	return &TransportError{Op: op, err: err}
}

// stallReader gives each Read of r d to complete, by resetting timer
// (whose expiry cancels the request).
type stallReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (s *stallReader) Read(p []byte) (int, error) {
	s.timer.Reset(s.d)
	return s.r.Read(p)
}

// windowReader fails once more than max bytes were read since the last
// reset, so a JSON answer can be long as long as each of its values is
// bounded.
type windowReader struct {
	r      io.Reader
	n, max int64
}

var errValueTooLarge = errors.New("value too large")

func (w *windowReader) Read(p []byte) (int, error) {
	if w.n >= w.max {
		return 0, errValueTooLarge
	}
	if int64(len(p)) > w.max-w.n {
		p = p[:w.max-w.n]
	}
	n, err := w.r.Read(p)
	w.n += int64(n)
	return n, err
}

func (w *windowReader) reset() { w.n = 0 }

// decodeJSONUpdate reads a JSON PeerUpdate from w, streaming the elements
// of a snapshot's peers array to sk one by one (each checked with
// gwproto.ParsePeerRecord; invalid ones are counted in Rejected). It
// stops at sk's first error and returns it.
func decodeJSONUpdate(w *windowReader, sk *sink) (Update, error) {
	var u Update
	dec := json.NewDecoder(w)
	if err := expectDelim(dec, '{'); err != nil {
		return u, err
	}
	sawPeers := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return u, err
		}
		switch tok {
		case "version":
			err = dec.Decode(&u.Version)
		case "full":
			err = dec.Decode(&u.Full)
		case "changes":
			err = dec.Decode(&u.Changes)
		case "peers":
			sawPeers = true
			err = decodeJSONPeers(dec, w, &u, sk)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return u, err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return u, err
	}
	if sawPeers && !u.Full && u.Peers+int64(u.Rejected) > 0 {
		return u, errors.New("peers in an answer that is not a snapshot")
	}
	if u.Full && len(u.Changes) > 0 {
		return u, errors.New("changes in a snapshot")
	}
	if u.Full {
		sk.begin(0) // a snapshot without a peers array: empty
	}
	return u, nil
}

func decodeJSONPeers(dec *json.Decoder, w *windowReader, u *Update, sk *sink) error {
	tok, err := dec.Token()
	if err != nil || tok == nil { // null
		return err
	}
	if tok != json.Delim('[') {
		return errors.New("peers is not an array")
	}
	// Begin waits for the first peer (or, for an empty snapshot, the end
	// of the answer): an empty array may stand in a change answer too,
	// and the JSON document gives no count.
	for dec.More() {
		var p gwproto.Peer
		if err := dec.Decode(&p); err != nil {
			return err
		}
		w.reset()
		r, err := gwproto.ParsePeerRecord(p)
		if err != nil {
			u.Rejected++
			continue
		}
		u.Peers++
		if err := sk.peer(r); err != nil {
			return err
		}
	}
	return expectDelim(dec, ']')
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("want %v", d)
	}
	return nil
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
