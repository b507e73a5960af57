// Package gwproto holds the JSON messages between the control server and
// gateways. Both sides import it, so the protocol is defined in one place.
//
// Protocol (HTTP, JSON, under /api/v1/gateway):
//
//	POST /api/v1/gateway/enroll          EnrollRequest  -> EnrollResponse
//	    The one-time token from `nitronet admin gateway add` is consumed.
//	    Afterwards the gateway authenticates every call with
//	    "Authorization: Bearer <credential>".
//	GET  /api/v1/gateway/peers?since=V&wait=SECONDS -> PeerUpdate
//	    Long-poll with a version cursor. since=0 (or a cursor the server no
//	    longer retains) returns a full snapshot (Full=true). Otherwise the
//	    server answers at once with the changes after V, or holds the
//	    request up to wait seconds (default 25, max 60) until a change
//	    arrives and then answers; an empty Changes list with the same
//	    Version means "nothing new, poll again".
//	POST /api/v1/gateway/sessions        SessionReport -> 204
//	    Batched session intervals at minute granularity. Idempotent: the
//	    same (device, start) pair reported twice updates the end.
//
// Nothing in these messages carries a client endpoint, a destination or a
// byte count.
package gwproto

import "time"

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

// Change is one entry of the peer feed: Removed drops PublicKey, otherwise
// Peer must be present with exactly these addresses.
type Change struct {
	Peer
	Removed bool `json:"removed,omitempty"`
}

// PeerUpdate answers a peers poll.
type PeerUpdate struct {
	Version int64    `json:"version"`
	Full    bool     `json:"full"`
	Peers   []Peer   `json:"peers,omitempty"`   // when Full
	Changes []Change `json:"changes,omitempty"` // when not Full
}

// Interval is one session of one device, start and end truncated to the
// minute. End is nil while the session is open.
type Interval struct {
	DeviceID string     `json:"device_id"`
	Start    time.Time  `json:"start"`
	End      *time.Time `json:"end,omitempty"`
}

// SessionReport is a batch of intervals from one gateway.
type SessionReport struct {
	Intervals []Interval `json:"intervals"`
}
