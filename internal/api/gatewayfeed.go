package api

import (
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/gwproto"
)

// snapshotWriteStall bounds how long one write of a streamed snapshot may
// block: a gateway that stops reading loses its answer instead of holding
// a database snapshot open. Each write moves the connection's deadline,
// so a large snapshot is not cut by the server's overall WriteTimeout.
const snapshotWriteStall = 30 * time.Second

// snapshotBuffer is the encoder's buffer; the response is written in
// chunks of this size.
const snapshotBuffer = 64 << 10

// acceptsSnapshot reports whether h's Accept header lists the binary
// snapshot media type with a non-zero quality.
func acceptsSnapshot(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		for _, rng := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(rng))
			if err != nil || mt != gwproto.SnapshotMediaType {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// snapshotResponse streams a peer snapshot into an HTTP response in the
// negotiated encoding. At Begin it calls allowed and, unless that fails,
// sends the status and headers; started tells whether it has.
type snapshotResponse struct {
	w       http.ResponseWriter
	binary  bool
	allowed func() error
	enc     gwproto.SnapshotWriter
	started bool
}

func newSnapshotResponse(w http.ResponseWriter, binary bool, allowed func() error) *snapshotResponse {
	return &snapshotResponse{w: w, binary: binary, allowed: allowed}
}

func (s *snapshotResponse) Begin(version, expected int64) error {
	if err := s.allowed(); err != nil {
		return err
	}
	s.started = true
	out := deadlineWriter{w: s.w, rc: http.NewResponseController(s.w)}
	if s.binary {
		s.w.Header().Set("Content-Type", gwproto.SnapshotMediaType)
		s.enc = gwproto.NewSnapshotEncoder(out, snapshotBuffer)
	} else {
		s.w.Header().Set("Content-Type", "application/json; charset=utf-8")
		s.enc = gwproto.NewJSONSnapshotEncoder(out, snapshotBuffer)
	}
	s.w.Header().Set("Cache-Control", "no-store")
	s.w.WriteHeader(http.StatusOK)
	return s.enc.Begin(version, expected)
}

func (s *snapshotResponse) Peer(r gwproto.PeerRecord) error { return s.enc.Peer(r) }
func (s *snapshotResponse) End(count int64) error           { return s.enc.End(count) }

// deadlineWriter moves the connection's write deadline before each write.
// Deadlines are on the wall clock, not the API's injected clock.
type deadlineWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(snapshotWriteStall)) // unsupported only in tests' recorders
	return d.w.Write(p)
}
