package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/pprof"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/gateway"
	"github.com/nitronet/nitronet/internal/memlimit"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/spf13/cobra"
)

func newGatewayCmd(g *globals) *cobra.Command {
	var f config.Gateway
	var token, logFormat, logLevel, cpuProfile string
	c := &cobra.Command{
		Use:   "gateway --server URL --token TOKEN",
		Short: "Run a WireGuard gateway that streams its peers from the control server",
		Long: "Run a gateway. It enrolls once with the token from `nitronet admin gateway add`\n" +
			"and then authenticates with its own credential (kept in --key-file if given).\n" +
			"At every start, once its UDP port is bound, it reports that port and, if given,\n" +
			"--endpoint and --region to the control server, which updates its record.\n" +
			"It writes nothing else to disk, and logs no client address, destination, DNS name\n" +
			"or traffic count. Kernel mode needs root; userspace mode needs none.\n" +
			"SIGHUP reloads the DNS blocklists (--blocklist); a list that fails keeps the old ones.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := config.Load(cmd.Flags(), g.env.Getenv); err != nil {
				return err
			}
			if token == "" {
				token = g.env.Getenv("NITRONET_GATEWAY_TOKEN")
			}
			serverURL := g.server
			if serverURL == "" {
				serverURL = g.env.Getenv("NITRONET_SERVER")
			}
			if serverURL == "" {
				return usageError(cmd, "--server is required (or NITRONET_SERVER): the control server's URL")
			}
			if token == "" && f.KeyFile == "" {
				return usageError(cmd, "--token is required (or --key-file holding an earlier enrollment)")
			}
			if err := f.Validate(""); err != nil {
				return err
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			log := newLogger(g.env.Stderr, logFormat, logLevel)
			if n, err := cgroupMemoryLimit(g.env.Getenv); err != nil {
				log.Warn("Go memory limit not taken from the cgroup", "err", err)
			} else if n > 0 {
				log.Info("Go memory limit taken from the cgroup", "bytes", n)
			}
			cfg := server.GatewayConfig(f, log)
			cfg.ServerURL, cfg.Token, cfg.Clock, cfg.Rand = serverURL, token, g.env.Clock, g.env.Rand
			cfg.Reload = reloadSignals(cmd.Context())
			gw, err := gateway.New(cfg)
			if err != nil {
				return err
			}
			go func() {
				select {
				case <-gw.Ready():
					tcp := ""
					if p := gw.TCPPort(); p != 0 {
						tcp = fmt.Sprintf(" and TCP port %d", p)
					}
					fmt.Fprintf(g.env.Stdout, "Gateway %s running (%s mode) on UDP port %d%s, endpoint %s\n", gw.ID(), f.Mode, gw.ListenPort(), tcp, gw.Endpoint())
				case <-cmd.Context().Done():
				}
			}()
			return server.GatewayError(gw.Run(cmd.Context()), f, "")
		},
	}
	f.Bind(c.Flags(), "")
	c.Flags().StringVar(&f.Mode, "mode", gateway.ModeKernel, "kernel (TUN + nftables, needs root) or userspace (netstack, no root)")
	c.Flags().StringVar(&g.server, "server", "", "control server URL (required; env NITRONET_SERVER)")
	c.Flags().StringVar(&token, "token", "", "one-time enrollment token (env NITRONET_GATEWAY_TOKEN)")
	c.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	c.Flags().StringVar(&logLevel, "log-level", "info", "log level")
	c.Flags().StringVar(&cpuProfile, "cpuprofile", "", "debugging: write a Go CPU profile of the whole run to this file (stack samples only: no addresses, keys or counts)")
	return c
}

// startCPUProfile starts a CPU profile written to path (created 0600) and
// returns the function that stops it and closes the file. A profile holds
// stack samples only: function names and sample counts, never packet
// contents, addresses or keys.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// cgroupMemoryLimit gives the gateway's Go runtime 90% of its cgroup's
// memory limit (memlimit.Apply), unless GOMEMLIMIT is set, and returns
// what it set (0 for nothing). Without /proc/self/cgroup (not Linux) it
// does nothing.
func cgroupMemoryLimit(getenv func(string) string) (int64, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return memlimit.Apply(getenv, os.DirFS("/sys/fs/cgroup"), string(self))
}
