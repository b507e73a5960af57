package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"time"
)

// serveUAPI serves a read-only wireguard-go UAPI on the unix socket at
// path (mode 0600, root only in practice), for `wg show` and tests: a
// "get=1" request is answered as wireguard-go's own socket would; any other
// operation, "set=1" included, gets errno 1 and the connection is closed,
// since the gateway's peer manager is the only writer of the device. The
// socket shows live peer state (keys, endpoints, counters) to whoever may
// open it, and writes nothing anywhere. It is removed when ctx is done;
// the returned function waits for that.
func (g *Gateway) serveUAPI(ctx context.Context, path string) (wait func(), err error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("gateway: UAPI socket %s: exists and is not a socket", path)
		}
		os.Remove(path) // stale, from a crash
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("gateway: UAPI socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("gateway: UAPI socket: %w", err)
	}
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	wg.Go(func() {
		defer stop()
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					g.log.Warn("UAPI socket stopped", "err", err.Error())
				}
				return
			}
			wg.Go(func() { g.uapiConn(ctx, c) })
		}
	})
	return wg.Wait, nil
}

// uapiConn answers get requests on c until it closes, fails or asks for
// anything else.
func (g *Gateway) uapiConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
	for {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		op, err := rw.ReadString('\n')
		if err != nil {
			return
		}
		if op != "get=1\n" {
			fmt.Fprintf(rw, "errno=1\n\n")
			rw.Flush()
			return
		}
		if b, err := rw.ReadByte(); err != nil || b != '\n' {
			fmt.Fprintf(rw, "errno=1\n\n")
			rw.Flush()
			return
		}
		if err := g.dev.IpcGetOperation(rw); err != nil {
			fmt.Fprintf(rw, "errno=1\n\n")
		} else {
			fmt.Fprintf(rw, "errno=0\n\n")
		}
		if rw.Flush() != nil {
			return
		}
	}
}
