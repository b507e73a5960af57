package gateway

// Benchmarks of on-demand peers: gateway memory with a million admitted
// keys, the latency of a first handshake, and the old design's memory per
// configured peer for comparison. See docs/benchmarks.md for the commands
// and results. They run only with -bench; TestOnDemandBenchChild is their
// child process and skips in a normal test run.

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/blake2s"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/nitronet/nitronet/internal/gateway/handshake"
	"github.com/nitronet/nitronet/internal/gateway/peers"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// envInt returns the integer in environment variable name, or def.
func envInt(tb testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		tb.Fatalf("%s=%q: want a non-negative integer", name, s)
	}
	return v
}

// newBareGateway builds a userspace gateway's data plane exactly as Run
// does (network, admission bind, handshake gate, device, peer manager), but
// without a control server: tests feed its peer manager directly.
func newBareGateway(tb testing.TB) (*Gateway, func()) {
	tb.Helper()
	g, err := New(Config{ServerURL: "http://127.0.0.1:9"})
	if err != nil {
		tb.Fatal(err)
	}
	key, err := wgkey.Generate(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	g.id = identity{Key: key}
	network, err := g.cfg.NewNetwork(NetworkConfig{Addresses: g.cfg.addresses(), MTU: g.cfg.MTU, Logger: g.log})
	if err != nil {
		tb.Fatal(err)
	}
	if err := g.startDevice(network, key); err != nil {
		tb.Fatal(err)
	}
	return g, func() {
		g.dev.Close()
		network.Close()
	}
}

// benchKey returns the i-th client private key derived from seed, so that
// two processes agree on the keys without passing them.
func benchKey(seed string, i int) wgkey.PrivateKey {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	k := wgkey.PrivateKey(blake2s.Sum256(append([]byte(seed), b[:]...)))
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k
}

// benchPeer returns the i-th feed entry of a benchmark snapshot as the
// control server makes them: a device ID from package ident, the key, and
// an IPv4 and IPv6 address at the same pool offset.
func benchPeer(i int, pub wgkey.PublicKey) gwproto.Peer {
	id, err := ident.New(rand.Reader, "dev")
	if err != nil {
		panic(err)
	}
	n := uint32(i + 2)
	v4 := netip.AddrFrom4([4]byte{100, 64 + byte(n>>16)&63, byte(n >> 8), byte(n)})
	v6 := netip.AddrFrom16([16]byte{0xfd, 0, 0x6e, 0x6e, 12: byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	return gwproto.Peer{
		DeviceID:  id,
		PublicKey: base64.StdEncoding.EncodeToString(pub[:]),
		Addresses: []string{v4.String() + "/32", v6.String() + "/128"},
	}
}

// admitBench streams n entries into g's peer manager as one snapshot; the
// first real of them carry the keys benchKey(seed, i), the rest random
// keys. It returns the wall and CPU time the manager took: entries are
// generated in chunks outside the measured parts, so that they are never
// all in memory and their making is not counted.
func admitBench(tb testing.TB, g *Gateway, seed string, n, real int) (wall, cpu time.Duration) {
	tb.Helper()
	measure := func(f func()) {
		start, cpu0 := time.Now(), cpuTime()
		f()
		wall += time.Since(start)
		cpu += cpuTime() - cpu0
	}
	measure(func() { g.peers.Begin(n) })
	chunk := make([]gwproto.Peer, 0, 10_000)
	for i := 0; i < n; {
		chunk = chunk[:0]
		for ; i < n && len(chunk) < cap(chunk); i++ {
			var pub wgkey.PublicKey
			if i < real {
				pub = benchKey(seed, i).Public()
			} else {
				rand.Read(pub[:])
			}
			chunk = append(chunk, benchPeer(i, pub))
		}
		measure(func() {
			for _, p := range chunk {
				g.peers.Add(p)
			}
		})
	}
	var res peers.Result
	measure(func() { res = g.peers.Commit() })
	if res.Added != n || res.Rejected != 0 {
		tb.Fatalf("snapshot load: got %+v, want %d added", res, n)
	}
	return wall, cpu
}

// cpuTime returns the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memStats is what a child process reports.
type memStats struct {
	Raw        int64 `json:"raw"`        // VmRSS as found, before the GC below, bytes
	RSS        int64 `json:"rss"`        // VmRSS after a GC that returns memory to the OS, bytes
	HWM        int64 `json:"hwm"`        // VmHWM, peak RSS, bytes
	Heap       int64 `json:"heap"`       // Go heap in use, bytes
	Goroutines int   `json:"goroutines"` // runtime.NumGoroutine
}

func measureMem(tb testing.TB) memStats {
	tb.Helper()
	raw, _ := readRSS(tb)
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := memStats{Raw: raw, Heap: int64(ms.HeapInuse), Goroutines: runtime.NumGoroutine()}
	st.RSS, st.HWM = readRSS(tb)
	return st
}

// readRSS returns the process's VmRSS and VmHWM in bytes.
func readRSS(tb testing.TB) (rss, hwm int64) {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// childReport is the last line a child process prints.
type childReport struct {
	Empty      memStats `json:"empty"`      // device up, nothing admitted or configured
	Admitted   memStats `json:"admitted"`   // after the admitted keys (on-demand) or configured peers (static)
	Active     memStats `json:"active"`     // after the active peers connected (on-demand)
	SteadyMax  int64    `json:"steady_max"` // on-demand: highest VmRSS while polling sessions, bytes
	LoadMS     float64  `json:"load_ms"`    // on-demand: index load; static: configuring the peers
	LoadCPUMS  float64  `json:"load_cpu_ms"`
	NAdmitted  int      `json:"n_admitted"` // keys in the index
	Configured int      `json:"configured"` // peers on the device
}

func emit(kind string, v any) {
	b, _ := json.Marshal(v)
	fmt.Printf("BENCH %s %s\n", kind, b)
}

// TestOnDemandBenchChild is the child process of BenchmarkGatewayRSS. It
// skips unless NITRONET_BENCH_CHILD names a mode:
//
//	ondemand  a gateway data plane with NITRONET_BENCH_KEYS admitted keys,
//	          of which the first NITRONET_BENCH_ACTIVE derive from
//	          NITRONET_BENCH_SEED; it prints its port and key, waits for a
//	          line on stdin (the parent has connected the active peers),
//	          then reports.
//	static    the old design: a gateway data plane whose device has
//	          NITRONET_BENCH_ACTIVE peers configured through UAPI, as
//	          package peers did before on-demand peers.
func TestOnDemandBenchChild(t *testing.T) {
	mode := os.Getenv("NITRONET_BENCH_CHILD")
	if mode == "" {
		t.Skip("child process of BenchmarkGatewayRSS")
	}
	g, stop := newBareGateway(t)
	defer stop()
	n := envInt(t, "NITRONET_BENCH_KEYS", 1_000_000)
	active := envInt(t, "NITRONET_BENCH_ACTIVE", 10_000)
	seed := os.Getenv("NITRONET_BENCH_SEED")
	var rep childReport
	rep.Empty = measureMem(t)
	switch mode {
	case "ondemand":
		wall, cpu := admitBench(t, g, seed, n, active)
		rep.LoadMS, rep.LoadCPUMS = float64(wall.Microseconds())/1000, float64(cpu.Microseconds())/1000
		rep.Admitted = measureMem(t)
		emit("ready", map[string]any{"port": g.bind.Port(), "pub": g.id.Key.Public().Hex()})
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			t.Fatalf("waiting for the parent: %v", err)
		}
		g.observe() // one session poll, so the tracker holds its sessions too
		rep.Active = measureMem(t)
		// Steady state: session polls, the gateway's main source of
		// garbage, 250 times faster than the default 5 s, so that the
		// heap reaches its GC goal within the run.
		steady := time.Duration(envInt(t, "NITRONET_BENCH_STEADY_S", 30)) * time.Second
		for end := time.Now().Add(steady); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			g.observe()
			if rss, _ := readRSS(t); rss > rep.SteadyMax {
				rep.SteadyMax = rss
			}
		}
	case "static":
		start := time.Now()
		for i := range active {
			p := benchPeer(i, benchKey(seed, i).Public())
			uapi := "public_key=" + benchKey(seed, i).Public().Hex() + "\nreplace_allowed_ips=true\nallowed_ip=" + p.Addresses[0] + "\nallowed_ip=" + p.Addresses[1] + "\n"
			if err := g.dev.IpcSet(uapi); err != nil {
				t.Fatalf("peer %d: %v", i, err)
			}
		}
		rep.LoadMS = float64(time.Since(start).Microseconds()) / 1000
		rep.Admitted = measureMem(t)
		rep.Active = rep.Admitted
	default:
		t.Fatalf("NITRONET_BENCH_CHILD=%q: want ondemand or static", mode)
	}
	s, err := g.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	rep.Configured = strings.Count(s, "public_key=")
	rep.NAdmitted = g.peers.Stats().Admitted
	emit("report", rep)
}

// child is a running child process of the benchmark.
type child struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines *bufio.Scanner
}

func startChild(b *testing.B, mode string, env ...string) *child {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOnDemandBenchChild$", "-test.count=1", "-test.timeout=30m")
	cmd.Env = append(append(os.Environ(), "NITRONET_BENCH_CHILD="+mode), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &child{cmd: cmd, in: in, lines: sc}
}

// next returns the payload of the child's next "BENCH kind" line.
func (c *child) next(b *testing.B, kind string, v any) {
	b.Helper()
	for c.lines.Scan() {
		rest, ok := strings.CutPrefix(c.lines.Text(), "BENCH "+kind+" ")
		if !ok {
			continue
		}
		if err := json.Unmarshal([]byte(rest), v); err != nil {
			b.Fatalf("child %s line: %v", kind, err)
		}
		return
	}
	b.Fatalf("child ended before its %s line: %v", kind, c.lines.Err())
}

// BenchmarkGatewayRSS measures, each in its own process so that RSS is the
// gateway's alone:
//
//   - on-demand: a userspace gateway data plane with NITRONET_BENCH_KEYS
//     (default 1,000,000) admitted keys, after NITRONET_BENCH_ACTIVE
//     (default 10,000) stock wireguard-go clients each completed a
//     handshake with it, so that many peers are configured and have
//     sessions;
//   - static (the old design, same run): the same data plane with
//     NITRONET_BENCH_ACTIVE peers configured on the device up front.
//
// Metrics: RSS in MB at each stage, the index load time, and the RSS cost
// per admitted key and per configured peer. Run with -benchtime 1x.
func BenchmarkGatewayRSS(b *testing.B) {
	n := envInt(b, "NITRONET_BENCH_KEYS", 1_000_000)
	active := envInt(b, "NITRONET_BENCH_ACTIVE", 10_000)
	var seedBytes [16]byte
	rand.Read(seedBytes[:])
	seed := fmt.Sprintf("%x", seedBytes)
	env := []string{"NITRONET_BENCH_SEED=" + seed, fmt.Sprintf("NITRONET_BENCH_KEYS=%d", n), fmt.Sprintf("NITRONET_BENCH_ACTIVE=%d", active)}
	for b.Loop() {
		st := startChild(b, "static", env...)
		var static childReport
		st.next(b, "report", &static)

		od := startChild(b, "ondemand", env...)
		var ready struct {
			Port int    `json:"port"`
			Pub  string `json:"pub"`
		}
		od.next(b, "ready", &ready)
		connectStart := time.Now()
		connectClients(b, seed, active, ready.Port, ready.Pub)
		connectTook := time.Since(connectStart)
		io.WriteString(od.in, "measure\n")
		var ondemand childReport
		od.next(b, "report", &ondemand)
		if ondemand.Configured != active || ondemand.NAdmitted != n {
			b.Fatalf("on-demand child: %d configured, %d admitted; want %d, %d", ondemand.Configured, ondemand.NAdmitted, active, n)
		}

		mb := func(v int64) float64 { return float64(v) / (1 << 20) }
		b.ReportMetric(mb(ondemand.Active.RSS), "ondemand-rss-MB")
		b.ReportMetric(mb(ondemand.Active.Raw), "ondemand-rss-before-gc-MB")
		b.ReportMetric(mb(ondemand.SteadyMax), "ondemand-steady-max-MB")
		b.ReportMetric(mb(ondemand.Active.HWM), "ondemand-peak-MB")
		b.ReportMetric(mb(ondemand.Empty.RSS), "empty-rss-MB")
		b.ReportMetric(mb(ondemand.Admitted.RSS), "admitted-only-rss-MB")
		b.ReportMetric(ondemand.LoadMS, "index-load-ms")
		b.ReportMetric(ondemand.LoadCPUMS, "index-load-cpu-ms")
		b.ReportMetric(float64(ondemand.Admitted.RSS-ondemand.Empty.RSS)/float64(n), "B/admitted-key")
		b.ReportMetric(float64(ondemand.Active.RSS-ondemand.Admitted.RSS)/float64(active)/1024, "KB/configured-peer")
		b.ReportMetric(float64(ondemand.Active.Goroutines), "ondemand-goroutines")
		b.ReportMetric(mb(static.Empty.RSS), "static-empty-rss-MB")
		b.ReportMetric(mb(static.Active.RSS), "static-rss-MB")
		b.ReportMetric(float64(static.Active.RSS-static.Empty.RSS)/float64(active)/1024, "static-KB/peer")
		b.ReportMetric(float64(static.Active.Goroutines), "static-goroutines")
		b.ReportMetric(connectTook.Seconds(), "connect-s")
	}
}

// benchClient is a stock wireguard-go device whose transport timestamps
// its handshake: the first initiation it sends and the response it gets.
type benchClient struct {
	dev  *device.Device
	bind *timingBind
}

type timingBind struct {
	conn.Bind
	mu     sync.Mutex
	sent   time.Time     // first initiation since arm
	resp   time.Time     // first response since arm
	gotRsp bool          // a response arrived since arm
	done   chan struct{} // closed when the confirming keepalive is sent
}

func (t *timingBind) arm() chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent, t.resp, t.gotRsp = time.Time{}, time.Time{}, false
	t.done = make(chan struct{})
	return t.done
}

func (t *timingBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	now := time.Now()
	t.mu.Lock()
	for _, p := range bufs {
		switch {
		case handshake.IsInitiation(p) && t.sent.IsZero():
			t.sent = now
		case len(p) >= 4 && p[0] == device.MessageTransportType && t.gotRsp && t.done != nil:
			close(t.done)
			t.done = nil
		}
	}
	t.mu.Unlock()
	return t.Bind.Send(bufs, ep)
}

func (t *timingBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, actual, err := t.Bind.Open(port)
	for i, fn := range fns {
		fns[i] = func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
			n, err := fn(bufs, sizes, eps)
			now := time.Now()
			t.mu.Lock()
			for j := range n {
				if sizes[j] == device.MessageResponseSize && bufs[j][0] == device.MessageResponseType && !t.gotRsp {
					t.resp, t.gotRsp = now, true
				}
			}
			t.mu.Unlock()
			return n, err
		}
	}
	return fns, actual, err
}

func newBenchClient(tb testing.TB) *benchClient {
	tb.Helper()
	c := &benchClient{bind: &timingBind{Bind: conn.NewDefaultBind()}}
	c.dev = device.NewDevice(tuntest.NewChannelTUN().TUN(), c.bind, device.NewLogger(device.LogLevelSilent, ""))
	if err := c.dev.Up(); err != nil {
		tb.Fatal(err)
	}
	return c
}

// handshake makes c, as key, handshake with the responder pub on
// 127.0.0.1:port, and returns the time from its initiation to the
// response. It waits until c has confirmed the session with a keepalive.
func (c *benchClient) handshake(tb testing.TB, key wgkey.PrivateKey, pub string, port int) time.Duration {
	tb.Helper()
	// Drop the previous peer before changing the key: a peer present
	// when the key changes would initiate with the new key itself.
	if err := c.dev.IpcSet("replace_peers=true\n"); err != nil {
		tb.Fatal(err)
	}
	done := c.bind.arm()
	cfg := fmt.Sprintf("private_key=%s\npublic_key=%s\nendpoint=127.0.0.1:%d\npersistent_keepalive_interval=25\nallowed_ip=100.64.0.1/32\n", key.Hex(), pub, port)
	if err := c.dev.IpcSet(cfg); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		tb.Fatalf("no handshake within 30 s")
	}
	c.bind.mu.Lock()
	defer c.bind.mu.Unlock()
	return c.bind.resp.Sub(c.bind.sent)
}

// connectClients has the active clients benchKey(seed, 0 … active-1)
// handshake with the gateway at port, a few at a time.
func connectClients(b *testing.B, seed string, active, port int, pub string) {
	b.Helper()
	const parallel = 8
	var wg sync.WaitGroup
	for w := range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newBenchClient(b)
			defer c.dev.Close()
			for i := w; i < active; i += parallel {
				c.handshake(b, benchKey(seed, i), pub, port)
			}
		}()
	}
	wg.Wait()
}

// percentile returns the p-th percentile (nearest rank) of ds in µs.
func percentile(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return float64(s[max(i, 0)].Nanoseconds()) / 1000
}

// BenchmarkFirstHandshake measures, in one run, the time from a stock
// wireguard-go client's handshake initiation to the gateway's response:
//
//   - first:      the key is admitted but not configured on the device, so
//     the gate configures it before wireguard-go answers;
//   - configured: the same kind of key, already configured (each key's
//     second handshake, at least 25 ms after its first);
//   - stock:      a plain wireguard-go device without the gate, the key
//     configured up front (the old design).
//
// The gateway admits NITRONET_BENCH_KEYS (default 100,000) keys. Each
// iteration takes one sample of each kind, in rotating order; the metrics
// are the p50, p90, p99 and maximum of each in µs, and extra-p50-us and
// extra-p99-us, first minus configured. Run with -benchtime 3000x.
func BenchmarkFirstHandshake(b *testing.B) {
	const lag = 4 // the configured sample uses the key of 4 iterations ago
	if b.N <= lag {
		// The framework's first probe with b.N = 1: too few for any
		// configured sample. Run with -benchtime 1000x.
		return
	}
	n := envInt(b, "NITRONET_BENCH_KEYS", 100_000)
	g, stop := newBareGateway(b)
	defer stop()
	var seedBytes [16]byte
	rand.Read(seedBytes[:])
	seed := fmt.Sprintf("%x", seedBytes)
	// The first half of the real keys go through the gate, the second
	// half to the stock device.
	samples := b.N
	admitBench(b, g, seed, max(n, samples), samples)
	gwPub, gwPort := g.id.Key.Public().Hex(), int(g.bind.Port())

	stockKey, _ := wgkey.Generate(rand.Reader)
	stock := device.NewDevice(tuntest.NewChannelTUN().TUN(), conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
	defer stock.Close()
	if err := stock.IpcSet("private_key=" + stockKey.Hex() + "\nlisten_port=0\n"); err != nil {
		b.Fatal(err)
	}
	if err := stock.Up(); err != nil {
		b.Fatal(err)
	}
	stockPort := 0
	if s, err := stock.IpcGet(); err == nil {
		for _, line := range strings.Split(s, "\n") {
			if v, ok := strings.CutPrefix(line, "listen_port="); ok {
				stockPort, _ = strconv.Atoi(v)
			}
		}
	}

	c := newBenchClient(b)
	defer c.dev.Close()
	var first, configured, stockD []time.Duration
	firstAt := make([]time.Time, samples)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		kinds := []int{0, 1, 2}
		for range i % 3 {
			kinds = append(kinds[1:], kinds[0])
		}
		for _, kind := range kinds {
			switch kind {
			case 0:
				first = append(first, c.handshake(b, benchKey(seed, i), gwPub, gwPort))
				// handshake returns once the gateway has consumed the
				// initiation and the session is confirmed.
				firstAt[i] = time.Now()
			case 1:
				j := i - lag
				if j < 0 {
					continue
				}
				// wireguard-go ignores a second initiation of a peer
				// within 20 ms of the last one it consumed.
				if wait := 25*time.Millisecond - time.Since(firstAt[j]); wait > 0 {
					time.Sleep(wait)
				}
				configured = append(configured, c.handshake(b, benchKey(seed, j), gwPub, gwPort))
			case 2:
				k := benchKey(seed+"-stock", i)
				if err := stock.IpcSet("public_key=" + k.Public().Hex() + "\nallowed_ip=" + benchPeer(i, k.Public()).Addresses[0] + "\n"); err != nil {
					b.Fatal(err)
				}
				stockD = append(stockD, c.handshake(b, k, stockKey.Public().Hex(), stockPort))
			}
		}
	}
	b.StopTimer()
	for _, m := range []struct {
		name string
		ds   []time.Duration
	}{{"first", first}, {"configured", configured}, {"stock", stockD}} {
		for _, p := range []float64{50, 90, 99, 100} {
			name := fmt.Sprintf("%s-p%.0f-us", m.name, p)
			if p == 100 {
				name = m.name + "-max-us" // a client retry shows as 5 s
			}
			b.ReportMetric(percentile(m.ds, p), name)
		}
	}
	b.ReportMetric(percentile(first, 50)-percentile(configured, 50), "extra-p50-us")
	b.ReportMetric(percentile(first, 99)-percentile(configured, 99), "extra-p99-us")
	if st := g.peers.Stats(); st.Configured != samples {
		b.Fatalf("configured peers: got %d, want %d", st.Configured, samples)
	}
}
