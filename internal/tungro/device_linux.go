package tungro

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// Device is a tun.Device whose Write coalesces TCP segments itself (see
// the package comment). Everything else is the wrapped device's.
type Device struct {
	tun.Device
	raw  syscall.RawConn
	pool sync.Pool // *scratch, one per concurrent Write

	superPackets atomic.Uint64
	segments     atomic.Uint64
}

// scratch is the per-Write state, reused through Device.pool.
type scratch struct {
	planner
	others [][]byte
	pieces [][]byte
	iov    []unix.Iovec
}

// Stats counts, since Wrap, the super-packets written and the segments
// they carried. They are totals for the device, never broken down by
// client or flow.
type Stats struct {
	SuperPackets uint64
	Segments     uint64
}

// Wrap returns dev with Write replaced by the coalescing one if dev is a
// Linux TUN opened with IFF_VNET_HDR (as wireguard-go's tun.CreateTUN does
// when the kernel offers TCP offloads); otherwise it returns dev itself.
func Wrap(dev tun.Device) tun.Device {
	f := dev.File()
	if f == nil {
		return dev
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return dev
	}
	name, err := dev.Name()
	if err != nil {
		return dev
	}
	vnet := false
	if cerr := raw.Control(func(fd uintptr) {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return
		}
		if unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr) == nil {
			vnet = ifr.Uint16()&unix.IFF_VNET_HDR != 0
		}
	}); cerr != nil || !vnet {
		return dev
	}
	d := &Device{Device: dev, raw: raw}
	d.pool.New = func() any { return new(scratch) }
	return d
}

// Stats returns the device's counts so far.
func (d *Device) Stats() Stats {
	return Stats{SuperPackets: d.superPackets.Load(), Segments: d.segments.Load()}
}

// Write writes the packets bufs[i][offset:], which must have offset bytes
// of headroom (at least VirtioNetHdrLen; wireguard-go leaves 16). It may
// overwrite the headroom and the headers of the packets it merges. TCP
// packets are written here, one writev per super-packet or single packet,
// in the order the package comment describes; all other packets go to the
// wrapped device's Write as one batch, which applies its own offloads
// (UDP GRO). A batch with a packet whose flow its first header does not
// show (an IPv4 fragment, an IPv6 extension header) goes to the wrapped
// device whole. It returns the bytes written, headers included, and the
// errors joined; a closed device ends the call with os.ErrClosed. Write
// is safe for concurrent use, as wireguard-go writes each peer's packets
// from its own goroutine.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	if offset < VirtioNetHdrLen {
		return d.Device.Write(bufs, offset)
	}
	s := d.pool.Get().(*scratch)
	defer d.pool.Put(s)
	s.plan(bufs, offset)
	if s.whole {
		return d.Device.Write(bufs, offset)
	}

	var (
		total int
		errs  error
	)
	for k := range s.units {
		u := &s.units[k]
		s.pieces = pieces(s.pieces[:0], bufs, offset, u)
		s.iov = s.iov[:0]
		for _, b := range s.pieces {
			s.iov = appendIovec(s.iov, b)
		}
		n, err := d.writev(s.iov)
		// Drop the references into the buffers.
		clear(s.pieces)
		clear(s.iov)
		if errors.Is(err, unix.EBADFD) || errors.Is(err, os.ErrClosed) {
			return total, os.ErrClosed
		}
		if err != nil {
			errs = errors.Join(errs, err)
			continue
		}
		total += n
		if len(u.members) > 1 {
			d.superPackets.Add(1)
			d.segments.Add(uint64(len(u.members)))
		}
	}
	if len(s.planner.others) > 0 {
		s.others = s.others[:0]
		for _, i := range s.planner.others {
			s.others = append(s.others, bufs[i])
		}
		n, err := d.Device.Write(s.others, offset)
		clear(s.others)
		total += n
		if errors.Is(err, os.ErrClosed) {
			return total, err
		}
		if err != nil {
			errs = errors.Join(errs, err)
		}
	}
	return total, errs
}

// appendIovec appends an iovec for b, which must not be empty.
func appendIovec(iov []unix.Iovec, b []byte) []unix.Iovec {
	v := unix.Iovec{Base: &b[0]}
	v.SetLen(len(b))
	return append(iov, v)
}

// writev writes iov to the TUN file descriptor in one system call, waiting
// through the runtime poller if the device is not writable.
func (d *Device) writev(iov []unix.Iovec) (int, error) {
	var (
		n     uintptr
		errno syscall.Errno
	)
	err := d.raw.Write(func(fd uintptr) bool {
		for {
			n, _, errno = unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
			if errno != unix.EINTR {
				return errno != unix.EAGAIN
			}
		}
	})
	if err != nil {
		// RawConn.Write itself fails only when the file is closing (no
		// deadline is ever set on it).
		return 0, os.ErrClosed
	}
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
