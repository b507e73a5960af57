package notify

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// PruneOutbox deletes the messages an Outbox wrote to dir before before,
// judged by the time in each file's name, and temporary files left by an
// interrupted write that were last modified before before. It returns how
// many files it deleted. A missing dir holds nothing to prune; other
// files are left alone.
func PruneOutbox(dir string, before time.Time) (int64, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("notify: prune outbox: %w", err)
	}
	var n int64
	for _, e := range entries {
		if !e.Type().IsRegular() || !due(e, before) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("notify: prune outbox: %w", err)
		}
		n++
	}
	return n, nil
}

// due reports whether outbox entry e was written before before.
func due(e fs.DirEntry, before time.Time) bool {
	name := e.Name()
	if strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") {
		fi, err := e.Info()
		return err == nil && fi.ModTime().Before(before)
	}
	stamp, rest, ok := strings.Cut(name, "-")
	if !ok || !strings.HasSuffix(rest, ".txt") {
		return false
	}
	nanos, err := strconv.ParseInt(stamp, 10, 64)
	return err == nil && time.Unix(0, nanos).Before(before)
}
