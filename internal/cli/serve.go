package cli

import (
	"fmt"
	"net"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/spf13/cobra"
)

func newServeCmd(env *Env) *cobra.Command {
	var cfg config.Serve
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the control server (API, portal, console)",
		Long: "Run the control server. Every flag can also be set with an environment variable\n" +
			"NITRONET_<FLAG>, for example NITRONET_LISTEN or NITRONET_SMTP_PASSWORD; a flag wins.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := config.ApplyEnv(cmd.Flags(), env.Getenv); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration: %w", err)
			}
			log := newLogger(env.Stderr, cfg.LogFormat, cfg.LogLevel)
			ctx := cmd.Context()
			srv, err := server.New(ctx, cfg, server.Deps{Logger: log, Clock: env.Clock, Rand: env.Rand, Stdout: env.Stdout})
			if err != nil {
				return err
			}
			defer srv.Close()
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			fmt.Fprintf(env.Stdout, "Nitronet control server listening on http://%s (data in %s)\n", ln.Addr(), cfg.DataDir)
			log.Info("serving", "storage", storageName(cfg))
			return srv.Serve(ctx, ln)
		},
	}
	cfg.Bind(c.Flags())
	return c
}

func storageName(cfg config.Serve) string {
	if cfg.Database != "" {
		return "postgres"
	}
	return "sqlite"
}
