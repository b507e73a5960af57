//go:build !linux

package kernelnet

import (
	"errors"

	"golang.zx2c4.com/wireguard/tun"
)

// Net is the gateway's kernel networking. Kernel mode is Linux-only.
type Net struct{}

// Setup returns errors.ErrUnsupported: kernel mode is Linux-only; use the
// userspace mode instead.
func Setup(cfg Config) (*Net, error) {
	if _, err := cfg.normalize(); err != nil {
		return nil, err
	}
	return nil, errors.ErrUnsupported
}

// TUN returns nil.
func (n *Net) TUN() tun.Device { return nil }

// Name returns "".
func (n *Net) Name() string { return "" }

// Uplink returns "".
func (n *Net) Uplink() string { return "" }

// Table returns "".
func (n *Net) Table() string { return "" }

// Close does nothing.
func (n *Net) Close() error { return nil }
