// Command nitronet is the Nitronet VPN: control server, gateway, client and
// operator tools in one binary. main only wires the process to cli.Run.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nitronet/nitronet/internal/cli"
	"github.com/nitronet/nitronet/internal/gateway"
)

func main() {
	// gVisor (the userspace network) logs to stderr by default; this
	// process-wide switch is the one global setting the program makes.
	gateway.QuietEngineLogs()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if status, msg := cli.Exit(err); status != cli.ExitOK {
		if msg != "" {
			fmt.Fprintln(os.Stderr, msg)
		}
		os.Exit(status)
	}
}
