//go:build !linux

package sqlstore

// shmLocked cannot tell on this system; it reports the database unused.
func shmLocked(shm string) (bool, error) { return false, nil }
