package vault

import (
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreate returns a Vault for the key-encryption key stored in the file
// at path, which holds exactly KEKSize raw bytes.
//
// If the file does not exist, LoadOrCreate creates it with KEKSize bytes read
// from rand (crypto/rand.Reader in production; nil means crypto/rand.Reader),
// file mode 0600, creating missing parent directories with mode 0700. An
// existing key is never overwritten. Where the file system supports hard
// links the new file appears atomically, so a concurrent LoadOrCreate either
// creates it or reads the complete file.
//
// LoadOrCreate refuses, with an error naming the path and the fix, a key
// file that is not a regular file, that group or others may read, write or
// execute (any mode bit in 0077), or whose size is not KEKSize. Losing the
// key file makes all sealed data unrecoverable; back it up apart from the
// database.
func LoadOrCreate(path string, rand io.Reader) (*Vault, error) {
	if rand == nil {
		rand = cryptorand.Reader
	}
	kek, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		kek, err = createKeyFile(path, rand)
	}
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	return New(kek, rand)
}

// readKeyFile reads and checks the key file. It returns an error satisfying
// errors.Is(err, fs.ErrNotExist) if the file does not exist.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vault: open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("vault: stat key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("vault: key file %s is not a regular file (mode %s)", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("vault: key file %s has mode %#o, which lets group or others access it; "+
			"run chmod 600 %s (and check who may have read it)", path, perm, path)
	}
	if fi.Size() != KEKSize {
		return nil, fmt.Errorf("vault: key file %s is %d bytes, want exactly %d", path, fi.Size(), KEKSize)
	}
	// Read one byte more than expected to catch a file that grew after Stat.
	buf := make([]byte, KEKSize+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		clear(buf)
		return nil, fmt.Errorf("vault: read key file %s: %w", path, err)
	}
	if n != KEKSize {
		clear(buf)
		return nil, fmt.Errorf("vault: key file %s is %d bytes, want exactly %d", path, n, KEKSize)
	}
	return buf[:KEKSize], nil
}

// createKeyFile writes a new random key to path, or reads the key another
// process created first.
func createKeyFile(path string, rand io.Reader) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vault: create key directory: %w", err)
	}
	kek := make([]byte, KEKSize)
	if _, err := io.ReadFull(rand, kek); err != nil {
		return nil, fmt.Errorf("vault: generate key: %w", err)
	}

	// Write to a temporary file, then link it into place: link fails rather
	// than overwrite an existing key, and readers never see a partial file.
	tmp, err := os.CreateTemp(dir, ".kek-*.tmp")
	if err != nil {
		clear(kek)
		return nil, fmt.Errorf("vault: create key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	err = writeSync(tmp, kek)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmpName, path)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			// The file system may not support hard links; fall back to an
			// exclusive create, which still never overwrites a key.
			err = createExclusive(path, kek)
		}
	}
	if errors.Is(err, fs.ErrExist) {
		// Another process won the race; use its key.
		clear(kek)
		return readKeyFile(path)
	}
	if err != nil {
		clear(kek)
		return nil, fmt.Errorf("vault: create key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: persist the new directory entry
		d.Close()
	}
	return kek, nil
}

// writeSync sets f's mode to 0600 regardless of umask, writes b and syncs.
func writeSync(f *os.File, b []byte) error {
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Sync()
}

// createExclusive creates path, which must not exist, and writes b to it.
// On a write error it removes the partial file.
func createExclusive(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = writeSync(f, b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
