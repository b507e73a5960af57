package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// identity is the gateway's own key and control-plane credential.
type identity struct {
	Key        wgkey.PrivateKey
	Credential string
	ID         string
	Region     string
}

// keyFileJSON is the on-disk form of identity. It holds no client data.
type keyFileJSON struct {
	PrivateKey string `json:"private_key"`
	Credential string `json:"credential,omitempty"`
	GatewayID  string `json:"gateway_id,omitempty"`
	Region     string `json:"region,omitempty"`
}

// loadKeyFile reads path. It returns fs.ErrNotExist (wrapped) if the file
// does not exist.
func loadKeyFile(path string) (identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return identity{}, fmt.Errorf("read key file: %w", err)
	}
	var kf keyFileJSON
	if err := json.Unmarshal(b, &kf); err != nil {
		return identity{}, errors.New("key file: malformed JSON")
	}
	key, err := wgkey.ParsePrivate(kf.PrivateKey)
	if err != nil || key.IsZero() {
		return identity{}, errors.New("key file: invalid private key")
	}
	return identity{Key: key, Credential: kf.Credential, ID: kf.GatewayID, Region: kf.Region}, nil
}

// saveKeyFile writes id to path atomically with mode 0600: a temporary file
// in the same directory, synced, then renamed over path.
func saveKeyFile(path string, id identity) error {
	b, err := json.MarshalIndent(keyFileJSON{
		PrivateKey: id.Key.Base64(),
		Credential: id.Credential,
		GatewayID:  id.ID,
		Region:     id.Region,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode key file: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".nitronet-gateway-key-*")
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	return nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
