// Package clientstate keeps the CLI's local state in the user's config
// directory: the server URL, the session token and each device's
// WireGuard private key. Files are mode 0600 in a 0700 directory.
//
// Private keys are generated here, on the device, and never leave it.
package clientstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// Dir is a client state directory.
type Dir struct{ Path string }

// Default returns the state directory from the environment:
// $NITRONET_CONFIG_DIR, else $XDG_CONFIG_HOME/nitronet, else
// $HOME/.config/nitronet.
func Default(getenv func(string) string) (Dir, error) {
	if d := getenv("NITRONET_CONFIG_DIR"); d != "" {
		return Dir{d}, nil
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return Dir{filepath.Join(d, "nitronet")}, nil
	}
	if h := getenv("HOME"); h != "" {
		return Dir{filepath.Join(h, ".config", "nitronet")}, nil
	}
	return Dir{}, fmt.Errorf("cannot find a config directory: set NITRONET_CONFIG_DIR or HOME")
}

// State is what the CLI remembers between runs.
type State struct {
	Server string `json:"server,omitempty"`
	Token  string `json:"token,omitempty"`
	Email  string `json:"email,omitempty"`
	// Device is the server's device token for Email (client.Session):
	// not a credential, only proof that this client logged in before.
	Device string `json:"device,omitempty"`
}

func (d Dir) file(name string) string { return filepath.Join(d.Path, name) }

// Load returns the saved state, or an empty one if none was saved.
func (d Dir) Load() (State, error) {
	var s State
	b, err := os.ReadFile(d.file("state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("state file %s is corrupt: %w", d.file("state.json"), err)
	}
	return s, nil
}

// Save writes s atomically with mode 0600.
func (d Dir) Save(s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return d.writeFile("state.json", b)
}

func (d Dir) writeFile(name string, data []byte) error {
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", d.Path, err)
	}
	dst := d.file(name)
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

func keyName(deviceID string) (string, error) {
	if deviceID == "" || strings.ContainsAny(deviceID, `/\.`) {
		return "", fmt.Errorf("invalid device id")
	}
	return filepath.Join("keys", deviceID+".key"), nil
}

// NewKey generates a device private key from rand and saves it as the
// pending key (before the server has assigned the device an id).
func (d Dir) NewKey(rand io.Reader) (wgkey.PrivateKey, error) {
	k, err := wgkey.Generate(rand)
	if err != nil {
		return k, err
	}
	if err := os.MkdirAll(filepath.Join(d.Path, "keys"), 0o700); err != nil {
		return k, err
	}
	return k, d.writeFile(filepath.Join("keys", "pending.key"), []byte(k.Base64()+"\n"))
}

// SaveKey stores k as the private key of deviceID, mode 0600.
func (d Dir) SaveKey(deviceID string, k wgkey.PrivateKey) error {
	name, err := keyName(deviceID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(d.Path, "keys"), 0o700); err != nil {
		return err
	}
	if err := d.writeFile(name, []byte(k.Base64()+"\n")); err != nil {
		return err
	}
	_ = os.Remove(d.file(filepath.Join("keys", "pending.key")))
	return nil
}

// Key loads the private key of deviceID.
func (d Dir) Key(deviceID string) (wgkey.PrivateKey, error) {
	name, err := keyName(deviceID)
	if err != nil {
		return wgkey.PrivateKey{}, err
	}
	b, err := os.ReadFile(d.file(name))
	if err != nil {
		return wgkey.PrivateKey{}, fmt.Errorf("no private key for device %s on this machine: %w", deviceID, err)
	}
	return wgkey.ParsePrivate(strings.TrimSpace(string(b)))
}

// RemoveKey deletes the private key of deviceID.
func (d Dir) RemoveKey(deviceID string) error {
	name, err := keyName(deviceID)
	if err != nil {
		return err
	}
	if err := os.Remove(d.file(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
