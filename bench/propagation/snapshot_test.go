package propagation

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/gateway/control"
	"github.com/nitronet/nitronet/internal/gateway/peers"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// BenchmarkSnapshot measures a gateway's start: one full snapshot of every
// registered device (NITRONET_BENCH_PEERS, default 10,000), from the
// database through the control server's HTTP handler over 127.0.0.1 into
// the gateway's index of admitted keys (a fresh peers.Manager each
// iteration, which validates every entry against the pools, as in the
// gateway). Server and client run in this process, so the time covers the
// database read, the encoding, the transfer, the decoding and the index.
// Per engine, in one run:
//
//	binary          the gateway's path: control.Client.Peers, the binary
//	                format streamed at both ends, each record admitted as
//	                it is decoded (Manager Begin with the header's count,
//	                AddPeer, Commit)
//	binary-discard  the same, counting records instead of admitting them:
//	                what streaming costs, without the index
//	json-compat     what an older gateway gets from this server: the
//	                streamed JSON document, decoded whole, then
//	                Manager.ApplyFull
//	json-old        the snapshot as it was before streaming: the server
//	                collects every peer and encodes the whole PeerUpdate;
//	                the gateway decodes the whole document (without the old
//	                client's 32 MiB limit, which refused more than about
//	                200,000 peers), then Manager.ApplyFull
//
// Metrics: ns/op per snapshot; cpu-ms/op the CPU time the process (server
// and gateway together) used for it; MB/op the size of the answer;
// peak-heap-MB the largest growth of heap memory in use (objects live or
// not yet swept, server and gateway together) above its level after a GC
// before the snapshot, sampled every 2 ms.
//
// With NITRONET_BENCH_PROFILE set to a directory, each way writes a CPU
// profile of its loads (the whole process, timer stopped or not, after
// the setup) to ENGINE-WAY.cpu there, so that a profile is not drowned by
// the preload.
func BenchmarkSnapshot(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			r := newRig(b, engine, benchPeers(b))
			c, cred := r.enroll(b, "bench-snapshot")
			old := httptest.NewServer(oldSnapshotHandler(r.srv.Store))
			b.Cleanup(old.Close)
			hc := &http.Client{}
			pools := []netip.Prefix{r.srv.Config.V4, r.srv.Config.V6}
			newIndex := func() *peers.Manager {
				return peers.NewManager(peers.ManagerConfig{Device: nopDevice{}, Pools: pools})
			}
			load := map[string]func() (int, int64, error){
				"binary": func() (int, int64, error) {
					m := newIndex()
					u, err := c.Peers(b.Context(), 0, time.Second, control.Snapshot{
						Begin: func(n int) { m.Begin(n) },
						Peer: func(r gwproto.PeerRecord) error {
							m.AddRecord(r)
							return nil
						},
					})
					if err != nil {
						return 0, 0, err
					}
					res := m.Commit()
					return m.Stats().Admitted, -1, rejected(res.Rejected + u.Rejected)
				},
				"binary-discard": func() (int, int64, error) {
					u, err := c.Peers(b.Context(), 0, time.Second, control.Snapshot{})
					return int(u.Peers), -1, err
				},
				"json-compat": func() (int, int64, error) {
					return loadJSONDocument(b.Context(), hc, r.url, cred, newIndex())
				},
				"json-old": func() (int, int64, error) {
					return loadJSONDocument(b.Context(), hc, old.URL, "", newIndex())
				},
			}
			binSize := binarySize(b, r.url, cred)
			for _, name := range []string{"binary", "binary-discard", "json-compat", "json-old"} {
				b.Run(name, func(b *testing.B) {
					var peak uint64
					var size int64
					var cpu time.Duration
					if dir := os.Getenv("NITRONET_BENCH_PROFILE"); dir != "" {
						f, err := os.Create(filepath.Join(dir, engine+"-"+name+".cpu"))
						if err != nil {
							b.Fatal(err)
						}
						if err := pprof.StartCPUProfile(f); err != nil {
							b.Fatal(err)
						}
						defer func() { pprof.StopCPUProfile(); f.Close() }()
					}
					for b.Loop() {
						b.StopTimer()
						runtime.GC()
						stop := sampleHeap(&peak)
						cpu0 := cpuTime()
						b.StartTimer()
						n, bytes, err := load[name]()
						b.StopTimer()
						cpu += cpuTime() - cpu0
						stop()
						if err != nil {
							b.Fatal(err)
						}
						if n != r.peers {
							b.Fatalf("loaded %d peers, want %d", n, r.peers)
						}
						size = bytes
						b.StartTimer()
					}
					if size < 0 {
						size = binSize
					}
					b.ReportMetric(float64(size)/1e6, "MB/op")
					b.ReportMetric(ms(cpu)/float64(b.N), "cpu-ms/op")
					b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
					b.ReportMetric(float64(r.peers), "peers")
				})
			}
		})
	}
}

// nopDevice stands in for the WireGuard device: loading a snapshot
// configures no peer on it.
type nopDevice struct{}

func (nopDevice) IpcSet(string) error { return nil }

func rejected(n int) error {
	if n > 0 {
		return fmt.Errorf("%d entries rejected", n)
	}
	return nil
}

// loadJSONDocument fetches a snapshot without asking for the binary
// format, decodes the whole document as gateways did before streaming,
// and applies it to m. It returns the peers admitted and the answer's
// size.
func loadJSONDocument(ctx context.Context, hc *http.Client, url, cred string, m *peers.Manager) (int, int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/api/v1/gateway/peers?since=0&wait=1", nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	cr := &countReader{r: resp.Body}
	var u gwproto.PeerUpdate
	if err := json.NewDecoder(cr).Decode(&u); err != nil {
		return 0, 0, err
	}
	if !u.Full {
		return 0, 0, fmt.Errorf("not a snapshot")
	}
	res := m.ApplyFull(u.Peers)
	_, _ = io.Copy(io.Discard, cr)
	return m.Stats().Admitted, cr.n, rejected(res.Rejected)
}

// binarySize returns the size of the binary snapshot answer.
func binarySize(b *testing.B, url, cred string) int64 {
	req, _ := http.NewRequestWithContext(b.Context(), "GET", url+"/api/v1/gateway/peers?since=0&wait=1", nil)
	req.Header.Set("Accept", gwproto.SnapshotMediaType)
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.Header.Get("Content-Type") != gwproto.SnapshotMediaType {
		b.Fatalf("binary snapshot: %v, %s", err, resp.Header.Get("Content-Type"))
	}
	return n
}

// oldSnapshotHandler answers a snapshot poll as the server did before
// snapshots were streamed (peerfeed.Hub.snapshot and the API's writeJSON
// at commit 902c6e8): every peer collected into a slice, converted to the
// JSON form, and the whole PeerUpdate encoded at once. It does no
// authentication.
func oldSnapshotHandler(st store.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peers, version, err := storetest.Snapshot(r.Context(), st)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		u := &gwproto.PeerUpdate{Version: version, Full: true, Peers: make([]gwproto.Peer, 0, len(peers))}
		for _, p := range peers {
			wp := gwproto.Peer{DeviceID: p.DeviceID, PublicKey: p.PublicKey}
			if p.IPv4.IsValid() {
				wp.Addresses = append(wp.Addresses, p.IPv4.String()+"/32")
			}
			if p.IPv6.IsValid() {
				wp.Addresses = append(wp.Addresses, p.IPv6.String()+"/128")
			}
			u.Peers = append(u.Peers, wp)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(u)
	})
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// sampleHeap records in *peak the largest growth of heap memory in use
// above its current level, every 2 ms, until the returned function is
// called.
func sampleHeap(peak *uint64) (stop func()) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(s); return s[0].Value.Uint64() }
	base := read()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if v := read(); v > base && v-base > *peak {
				*peak = v - base
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
