package sqlstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	sys "golang.org/x/sys/unix"
)

// shmDMS is the offset of the "dead man switch" byte in SQLite's WAL
// shared-memory file (UNIX_SHM_DMS in SQLite's os_unix.c): every
// connection holds a read lock on it while it has the database open.
const shmDMS = 128

// shmLocked reports whether anyone holds a lock on the DMS byte of the
// shared-memory file shm. It asks with an open file description lock,
// which conflicts with the process-associated locks SQLite takes, this
// process's own included.
func shmLocked(shm string) (bool, error) {
	f, err := os.Open(shm)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // WAL connections create it; nobody has the database open
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	lk := sys.Flock_t{Type: sys.F_WRLCK, Whence: 0, Start: shmDMS, Len: 1}
	if err := sys.FcntlFlock(f.Fd(), sys.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("lock query on %s: %w", shm, err)
	}
	return lk.Type != sys.F_UNLCK, nil
}
