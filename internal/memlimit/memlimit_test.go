package memlimit_test

import (
	"runtime/debug"
	"testing"
	"testing/fstest"

	"github.com/nitronet/nitronet/internal/memlimit"
)

const service = "0::/system.slice/nitronet-gateway.service\n"

func cgroupFS(memoryMax string) fstest.MapFS {
	return fstest.MapFS{"system.slice/nitronet-gateway.service/memory.max": {Data: []byte(memoryMax)}}
}

func TestFromCgroup(t *testing.T) {
	tests := []struct {
		name    string
		fs      fstest.MapFS
		self    string
		want    int64
		ok      bool
		wantErr bool
	}{
		{"limited service", cgroupFS("629145600\n"), service, 629145600, true, false},
		{"no limit", cgroupFS("max\n"), service, 0, false, false},
		{"v1 lines ignored", cgroupFS("1048576\n"), "12:memory:/x\n" + service, 1048576, true, false},
		{"only cgroup v1", cgroupFS("1048576\n"), "12:memory:/system.slice/nitronet-gateway.service\n", 0, false, false},
		{"host root cgroup", fstest.MapFS{}, "0::/\n", 0, false, false},
		{"container root", fstest.MapFS{"memory.max": {Data: []byte("2147483648")}}, "0::/\n", 2147483648, true, false},
		{"missing file", fstest.MapFS{}, service, 0, false, false},
		{"garbage", cgroupFS("lots\n"), service, 0, false, true},
		{"zero", cgroupFS("0\n"), service, 0, false, true},
		{"negative", cgroupFS("-5\n"), service, 0, false, true},
		{"empty self", cgroupFS("1048576"), "", 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := memlimit.FromCgroup(tt.fs, tt.self)
			if got != tt.want || ok != tt.ok || (err != nil) != tt.wantErr {
				t.Fatalf("FromCgroup: got %d, %v, %v; want %d, %v, error %v", got, ok, err, tt.want, tt.ok, tt.wantErr)
			}
		})
	}
}

func TestApply(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	noEnv := func(string) string { return "" }

	set, err := memlimit.Apply(noEnv, cgroupFS("1000000000"), service)
	if err != nil || set != 900000000 {
		t.Fatalf("Apply: got %d, %v; want 900000000 (0.9 of the cgroup's limit)", set, err)
	}
	if got := debug.SetMemoryLimit(-1); got != 900000000 {
		t.Fatalf("runtime memory limit: got %d, want 900000000", got)
	}

	debug.SetMemoryLimit(before)
	env := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "480MiB"
		}
		return ""
	}
	if set, err := memlimit.Apply(env, cgroupFS("1000000000"), service); err != nil || set != 0 {
		t.Fatalf("Apply with GOMEMLIMIT set: got %d, %v; want 0, nil (the environment wins)", set, err)
	}
	if set, err := memlimit.Apply(noEnv, cgroupFS("max"), service); err != nil || set != 0 {
		t.Fatalf("Apply without a limit: got %d, %v; want 0, nil", set, err)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("runtime memory limit changed to %d without a cgroup limit, want %d", got, before)
	}
}

// FuzzFromCgroup feeds any /proc/self/cgroup text and memory.max content:
// no panic, and a limit only when it is a positive number.
func FuzzFromCgroup(f *testing.F) {
	f.Add(service, "629145600\n")
	f.Add("0::/\n", "max")
	f.Add("0::../../etc\n", "1")
	f.Fuzz(func(t *testing.T, self, max string) {
		fsys := fstest.MapFS{
			"memory.max": {Data: []byte(max)},
			"system.slice/nitronet-gateway.service/memory.max": {Data: []byte(max)},
		}
		n, ok, err := memlimit.FromCgroup(fsys, self)
		if ok && (n <= 0 || err != nil) {
			t.Fatalf("got limit %d, ok, error %v", n, err)
		}
	})
}
