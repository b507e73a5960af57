package cli

import (
	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/spf13/cobra"
)

func newServeCmd(env *Env) *cobra.Command {
	var cfg config.Settings
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the control server (API, portal, console)",
		Long: "Run the control server. Every setting is a flag; a flag not given is taken from the\n" +
			"environment variable NITRONET_<FLAG> (for example NITRONET_LISTEN or\n" +
			"NITRONET_SMTP_PASSWORD), then from the TOML file of --config, then its default.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := config.Load(cmd.Flags(), env.Getenv); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			log := newLogger(env.Stderr, cfg.LogFormat, cfg.LogLevel)
			deps := server.Deps{Logger: log, Clock: env.Clock, Rand: env.Rand, Stdout: env.Stdout}
			if cfg.Gateway.Mode != "" {
				deps.Reload = reloadSignals(cmd.Context())
			}
			srv, err := server.New(cmd.Context(), cfg, deps)
			if err != nil {
				return err
			}
			defer srv.Close()
			return srv.Run(cmd.Context())
		},
	}
	cfg.Bind(c.Flags())
	return c
}
