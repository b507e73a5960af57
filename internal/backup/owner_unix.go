//go:build unix

package backup

import (
	"os"
	"syscall"
)

// chownLike gives file the owner and group of dir when this process may
// (root restoring into a service's data directory), so that the service
// can open the database it did not write.
func chownLike(file, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return os.Chown(file, int(s.Uid), int(s.Gid))
}
