// Package gwproto holds the messages between the control server and
// gateways. Both sides import it, so the protocol is defined in one place:
// the JSON messages below, and the binary peer snapshot format (see
// snapshot.go and docs/gateway-protocol.md).
//
// Protocol (HTTP, under /api/v1/gateway):
//
//	POST /api/v1/gateway/enroll          EnrollRequest  -> EnrollResponse
//	    The one-time token from `nitronet admin gateway add` is consumed.
//	    Afterwards the gateway authenticates every call with
//	    "Authorization: Bearer <credential>".
//	GET  /api/v1/gateway/peers?since=V&wait=SECONDS&removals=device -> snapshot or PeerUpdate
//	    Long-poll with a version cursor. since=0 (or a cursor the server no
//	    longer retains) returns a full snapshot: in the binary format
//	    (SnapshotMediaType) when the Accept header lists it, otherwise as
//	    a JSON PeerUpdate with Full=true. Either is streamed as it is read
//	    from the database. Otherwise the server answers at once with the
//	    changes after V, or holds the request up to wait seconds (default
//	    25, max 60) until a change arrives and then answers; an empty
//	    Changes list with the same Version means "nothing new, poll
//	    again". Change answers are always JSON. removals=device says the
//	    gateway drops a peer named only by its device ID (a removal with no
//	    public key); without it, such changes come as a full snapshot.
//	POST /api/v1/gateway/hello           HelloRequest -> HelloResponse
//	    Sent at every start, once the WireGuard port is bound: the gateway
//	    reports its listen port and, if it was given them, the endpoint and
//	    region its record should have. The server validates them, records
//	    them and answers with the record as it now is.
//	POST /api/v1/gateway/sessions        SessionReport -> 204
//	    Batched session intervals at minute granularity. Idempotent: the
//	    same (device, start) pair reported twice updates the end.
//
// Nothing in these messages carries a client endpoint, a destination or a
// byte count.
package gwproto

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"time"
)

// EnrollRequest is sent once by a new gateway.
type EnrollRequest struct {
	Token     string `json:"token"`
	PublicKey string `json:"public_key"`
}

// EnrollResponse returns the gateway's identity and credential.
type EnrollResponse struct {
	ID         string `json:"id"`
	Region     string `json:"region"`
	Endpoint   string `json:"endpoint"`
	Credential string `json:"credential"`
}

// Peer is a device that may connect through the gateway.
type Peer struct {
	DeviceID  string   `json:"device_id"`
	PublicKey string   `json:"public_key"`
	Addresses []string `json:"addresses"` // host prefixes, e.g. 100.64.0.2/32, fd00::2/128
}

// Change is one entry of the peer feed: Removed drops the peer with
// PublicKey or, when PublicKey is empty (a removed device, whose key and
// addresses the server no longer keeps), the peer with DeviceID; otherwise
// Peer must be present with exactly these addresses.
type Change struct {
	Peer
	Removed bool `json:"removed,omitempty"`
}

// RemovalsByDevice is the value of the peers poll's "removals" parameter
// by which a gateway says it drops a peer named only by its device ID.
const RemovalsByDevice = "device"

// PeerUpdate answers a peers poll.
type PeerUpdate struct {
	Version int64    `json:"version"`
	Full    bool     `json:"full"`
	Peers   []Peer   `json:"peers,omitempty"`   // when Full
	Changes []Change `json:"changes,omitempty"` // when not Full
}

// MaxSession is the longest interval a gateway reports, which the control
// server enforces (package usage): a gateway reports a longer session as
// consecutive intervals of at most MaxSession each.
const MaxSession = 24 * time.Hour

// Interval is one session of one device, start and end truncated to the
// minute. End is nil while the session is open. It lasts at most
// MaxSession.
type Interval struct {
	DeviceID string     `json:"device_id"`
	Start    time.Time  `json:"start"`
	End      *time.Time `json:"end,omitempty"`
}

// SessionReport is a batch of intervals from one gateway.
type SessionReport struct {
	Intervals []Interval `json:"intervals"`
}

// HelloRequest is what a gateway reports about itself at every start. An
// empty Endpoint or Region keeps the record's value.
type HelloRequest struct {
	// ListenPort is the UDP port the gateway's WireGuard device is bound
	// to, 1 to 65535.
	ListenPort int `json:"listen_port"`
	// Endpoint is the HOST:PORT clients are to dial (see ResolveEndpoint).
	// Its port may differ from ListenPort only behind a port forward.
	Endpoint string `json:"endpoint,omitempty"`
	// Region is the region to record (see NormalizeRegion).
	Region string `json:"region,omitempty"`
	// TCPPort is the TCP port on which the gateway also takes WireGuard
	// framed over TCP (package udptcp), 0 for none. Unlike Endpoint and
	// Region it is recorded at every report, 0 included: it follows
	// the gateway's setting. Clients dial it on Endpoint's host.
	TCPPort int `json:"tcp_port,omitempty"`
	// Relays are the gateway's multihop relay ports: each forwards the
	// WireGuard datagrams that reach it (on Endpoint's host) to the
	// exit gateway it names, so that a stock WireGuard app can use
	// this gateway as the entry of a multihop tunnel. Like TCPPort it
	// is recorded at every report, empty included.
	Relays []Relay `json:"relays,omitempty"`
}

// Relay is one multihop relay port of an entry gateway.
type Relay struct {
	// Exit is the id of the exit gateway the port forwards to.
	Exit string `json:"exit"`
	// Port is the UDP port on the entry's endpoint host, 1 to 65535.
	Port int `json:"port"`
}

// HelloResponse is the gateway's record after a HelloRequest.
type HelloResponse struct {
	ID       string  `json:"id"`
	Region   string  `json:"region"`
	Endpoint string  `json:"endpoint"`
	TCPPort  int     `json:"tcp_port,omitempty"`
	Relays   []Relay `json:"relays,omitempty"`
	// Changed names the fields the request changed: "region", "endpoint",
	// "tcp_port", "relays".
	Changed []string `json:"changed,omitempty"`
}

// ResolveEndpoint checks an endpoint given as HOST:PORT or as HOST alone
// and returns it as HOST:PORT, HOST alone taking port. With port 0 a port
// is required. An IPv6 address with a port goes in brackets
// ([2001:db8::1]:51820); an unbracketed IPv6 address is a HOST alone. The
// errors name the endpoint but never quote it.
func ResolveEndpoint(endpoint string, port int) (string, error) {
	endpoint = strings.TrimSpace(endpoint)
	host, ps, err := net.SplitHostPort(endpoint)
	switch {
	case err == nil:
	case port == 0:
		return "", errors.New("endpoint must be HOST:PORT")
	default:
		host, ps = endpoint, strconv.Itoa(port)
		if b, ok := strings.CutPrefix(host, "["); ok {
			if host, ok = strings.CutSuffix(b, "]"); !ok {
				return "", errors.New("endpoint host is not a valid host name or address")
			}
		}
	}
	if !validHost(host) {
		return "", errors.New("endpoint host is not a valid host name or address")
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 1 || p > 65535 {
		return "", errors.New("endpoint port must be 1 to 65535")
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

// validHost reports whether h is an IP address, or a name of printable
// ASCII without spaces, slashes, @ or brackets.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if strings.Contains(h, ":") {
		return net.ParseIP(h) != nil
	}
	for _, c := range []byte(h) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`/\@[]`, c) >= 0 {
			return false
		}
	}
	return true
}

// NormalizeRegion checks a region name, 1 to 32 of a-z, 0-9 and -, and
// returns it lower-cased and trimmed.
func NormalizeRegion(r string) (string, error) {
	r = strings.ToLower(strings.TrimSpace(r))
	if r == "" || len(r) > 32 || strings.Trim(r, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return "", errors.New("region must be 1 to 32 characters of a-z, 0-9 and -")
	}
	return r, nil
}
