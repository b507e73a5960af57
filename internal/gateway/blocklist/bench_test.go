package blocklist

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/nitronet/nitronet/internal/dnsblock"
)

// benchNames is the size of the generated list: a million entries, the
// size of the largest public lists.
func benchNames(b *testing.B) int {
	if s := os.Getenv("NITRONET_BENCH_BLOCKLIST"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("NITRONET_BENCH_BLOCKLIST=%q: want a positive count", s)
		}
		return n
	}
	return 1_000_000
}

// benchName returns the i-th generated name: 2 to 4 labels, 15 to 30
// bytes, like the names of real lists.
func benchName(i int) string {
	switch i % 3 {
	case 0:
		return fmt.Sprintf("ads%d.tracker-cdn.example", i)
	case 1:
		return fmt.Sprintf("t%d.metrics.example", i)
	}
	return fmt.Sprintf("x%dpromo.test", i)
}

// writeBenchList writes n names, half in hosts format, to a file.
func writeBenchList(b *testing.B, n int) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "list.txt")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "# generated benchmark list")
	for i := range n {
		if i%2 == 0 {
			fmt.Fprintf(w, "0.0.0.0 %s\n", benchName(i))
		} else {
			fmt.Fprintln(w, benchName(i))
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}

// heapAfterGC returns the live heap after two collections.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkLoad loads a list of NITRONET_BENCH_BLOCKLIST names (default a
// million) into an Index, and, in the same run, into a Go map as the
// yardstick, reporting the live heap each holds per name.
//
//	go test -run '^$' -bench Load -benchtime 3x ./internal/gateway/blocklist
func BenchmarkLoad(b *testing.B) {
	n := benchNames(b)
	path := writeBenchList(b, n)
	b.Run("index", func(b *testing.B) {
		var keep *Index
		base := heapAfterGC()
		for b.Loop() {
			keep = nil
			ix, _, err := Load([]Source{{dnsblock.Ads, path}})
			if err != nil {
				b.Fatal(err)
			}
			keep = ix
		}
		b.ReportMetric(float64(heapAfterGC()-base)/float64(keep.Len()), "heap-B/name")
		b.ReportMetric(float64(keep.Bytes())/1e6, "index-MB")
		runtime.KeepAlive(keep)
	})
	b.Run("map", func(b *testing.B) {
		var keep map[string]dnsblock.Set
		base := heapAfterGC()
		for b.Loop() {
			keep = nil
			m := map[string]dnsblock.Set{}
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Parse(f, func(name []byte) { m[string(name)] |= dnsblock.Set(dnsblock.Ads) }); err != nil {
				b.Fatal(err)
			}
			f.Close()
			keep = m
		}
		b.ReportMetric(float64(heapAfterGC()-base)/float64(len(keep)), "heap-B/name")
		runtime.KeepAlive(keep)
	})
}

// BenchmarkMatch looks up a listed subdomain and an unlisted name of four
// labels in an index of NITRONET_BENCH_BLOCKLIST names.
//
//	go test -run '^$' -bench Match ./internal/gateway/blocklist
func BenchmarkMatch(b *testing.B) {
	n := benchNames(b)
	bl := NewBuilder(n, 0)
	for i := range n {
		bl.Add([]byte(benchName(i)), dnsblock.Set(dnsblock.Ads))
	}
	ix := bl.Index()
	for _, c := range []struct{ name, q string }{
		{"listed", "www." + benchName(n/2)},
		{"unlisted", "www.images.news.example"},
	} {
		b.Run(c.name, func(b *testing.B) {
			q := []byte(c.q)
			want := c.name == "listed"
			for b.Loop() {
				if (ix.Match(q) != 0) != want {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}
