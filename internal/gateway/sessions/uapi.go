// Package sessions derives session intervals from WireGuard handshakes and
// queues them for the control server.
//
// A session of a device starts at its first handshake and ends when no
// handshake has come for longer than RejectAfterTime, or when the peer is
// removed. Start and end are truncated to the minute. Only the public key and
// the last handshake time of each peer are ever read from the device; its
// endpoint and byte counters are skipped while parsing and never stored.
package sessions

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// Handshake is the last handshake time of one peer. Last is the zero Time if
// the peer never completed a handshake.
type Handshake struct {
	Key  wgkey.PublicKey
	Last time.Time
}

// ParseUAPI extracts each peer's public key and last handshake time from the
// output of a wireguard-go UAPI "get" (device.IpcGet). Every other line,
// including the device's private key, the peers' endpoints and their
// transfer counters, is skipped without being retained. It returns an error
// for a malformed public_key or handshake line, or a line without '='.
// ParseUAPI never panics, whatever the input.
func ParseUAPI(s string) ([]Handshake, error) {
	var (
		out  []Handshake
		cur  *Handshake
		sec  int64
		nsec int64
	)
	flush := func() {
		if cur == nil {
			return
		}
		if sec != 0 || nsec != 0 {
			cur.Last = time.Unix(sec, nsec)
		}
		out = append(out, *cur)
		cur, sec, nsec = nil, 0, 0
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" {
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("uapi line %d: missing '='", line)
		}
		switch key {
		case "public_key":
			flush()
			b, err := hex.DecodeString(value)
			if err != nil || len(b) != wgkey.Len {
				return nil, fmt.Errorf("uapi line %d: invalid public key", line)
			}
			cur = &Handshake{}
			copy(cur.Key[:], b)
		case "last_handshake_time_sec", "last_handshake_time_nsec":
			if cur == nil {
				return nil, fmt.Errorf("uapi line %d: handshake time outside a peer", line)
			}
			v, err := strconv.ParseInt(value, 10, 64)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("uapi line %d: invalid handshake time", line)
			}
			if key == "last_handshake_time_sec" {
				if v > 1<<40 { // far beyond any real clock; keeps time.Unix sane
					return nil, fmt.Errorf("uapi line %d: handshake time out of range", line)
				}
				sec = v
			} else {
				if v >= int64(time.Second) {
					return nil, fmt.Errorf("uapi line %d: handshake nanoseconds out of range", line)
				}
				nsec = v
			}
		default:
			// Deliberately ignored: private_key, listen_port, endpoint,
			// rx_bytes, tx_bytes, allowed_ip and the rest.
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("uapi: %w", err)
	}
	flush()
	return out, nil
}
