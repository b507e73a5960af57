// Package memlimit gives a process the Go runtime's soft memory limit from
// the memory limit of the cgroup (version 2) it runs in, so that a gateway
// started by systemd with MemoryMax= collects garbage before it reaches
// that limit instead of letting its heap grow to twice the live set.
package memlimit

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// Share is the part of the cgroup's limit given to the Go runtime: the
// rest is left for memory the runtime does not count (thread stacks of
// the kernel, the binary's text, page cache charged to the cgroup).
const Share = 0.9

// FromCgroup returns the memory limit in bytes of the cgroup v2 named in
// selfCgroup (the text of /proc/self/cgroup), read from memory.max under
// root (the cgroup v2 mount, /sys/fs/cgroup). ok is false when the process
// has no cgroup v2 entry, its cgroup has no memory.max (the host's root
// cgroup) or the limit is "max". A memory.max that is neither a number nor "max"
// is an error.
func FromCgroup(root fs.FS, selfCgroup string) (limit int64, ok bool, err error) {
	dir, found := unifiedPath(selfCgroup)
	if !found {
		return 0, false, nil
	}
	// In a container with its own cgroup namespace the path is "/" and
	// the mount's own memory.max is the container's limit.
	p := path.Join(strings.TrimPrefix(path.Clean(dir), "/"), "memory.max")
	b, err := fs.ReadFile(root, p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read cgroup memory limit: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "max" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, false, fmt.Errorf("cgroup memory.max %q is not a number of bytes", v)
	}
	return n, true, nil
}

// unifiedPath returns the cgroup v2 path in selfCgroup: the line
// "0::PATH". Lines of cgroup v1 hierarchies are ignored.
func unifiedPath(selfCgroup string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(selfCgroup))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "0::"); ok && strings.HasPrefix(rest, "/") {
			return rest, true
		}
	}
	return "", false
}

// Apply sets the Go runtime's memory limit to Share of the cgroup's limit
// and returns the limit it set, unless the environment sets GOMEMLIMIT
// (which the runtime has applied already, and which wins) or the cgroup
// has no limit; then it changes nothing and returns 0.
func Apply(getenv func(string) string, root fs.FS, selfCgroup string) (int64, error) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	limit, ok, err := FromCgroup(root, selfCgroup)
	if err != nil || !ok {
		return 0, err
	}
	set := int64(float64(limit) * Share)
	debug.SetMemoryLimit(set)
	return set, nil
}
