package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/nitronet/nitronet/internal/gateway"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/spf13/cobra"
)

func newServeCmd(env *Env) *cobra.Command {
	var cfg config.Serve
	var gwf gatewayFlags
	var gwRegion, gwEndpoint string
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
			scheme := "http"
			if cfg.TLSCert != "" {
				scheme = "https"
			}
			fmt.Fprintf(env.Stdout, "Nitronet control server listening on %s://%s (data in %s)\n", scheme, ln.Addr(), cfg.DataDir)
			log.Info("serving", "storage", storageName(cfg))
			if gwf.mode == "" {
				return srv.Serve(ctx, ln)
			}
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			gw, err := inProcessGateway(ctx, srv, &gwf, gwRegion, gwEndpoint, scheme+"://"+ln.Addr().String(), env, log)
			if err != nil {
				ln.Close()
				return err
			}
			errc := make(chan error, 2)
			go func() { errc <- srv.Serve(ctx, ln) }()
			go func() { errc <- gw.Run(ctx) }()
			go func() {
				select {
				case <-gw.Ready():
					fmt.Fprintf(env.Stdout, "Gateway %s running in this process (%s mode), endpoint %s\n", gw.ID(), gwf.mode, gwEndpoint)
				case <-ctx.Done():
				}
			}()
			first := <-errc
			cancel()
			second := <-errc
			return errors.Join(first, second)
		},
	}
	cfg.Bind(c.Flags())
	gwf.bind(c, "gateway-")
	c.Flags().StringVar(&gwf.mode, "gateway", "", "also run a gateway in this process: userspace or kernel (enrolled automatically)")
	c.Flags().StringVar(&gwRegion, "gateway-region", "local", "region of the in-process gateway")
	c.Flags().StringVar(&gwEndpoint, "gateway-endpoint", "127.0.0.1:51820", "HOST:PORT clients dial for the in-process gateway")
	return c
}

// inProcessGateway builds the gateway that `serve --gateway` runs beside
// the control server. It enrolls with a token minted directly through the
// gateways service; its key and credential are kept in DATA/gateway.key so
// that a restart reuses the same gateway record.
func inProcessGateway(ctx context.Context, srv *server.Server, f *gatewayFlags, region, endpoint, selfURL string, env *Env, log *slog.Logger) (*gateway.Gateway, error) {
	if f.keyFile == "" {
		f.keyFile = filepath.Join(srv.Config.DataDir, "gateway.key")
	}
	gc, err := f.config("gateway-", log.With("component", "gateway"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(f.keyFile); errors.Is(err, fs.ErrNotExist) {
		_, tok, err := srv.Gateways.Add(ctx, region, endpoint)
		if err != nil {
			return nil, fmt.Errorf("in-process gateway: %w", err)
		}
		gc.Token = tok
	}
	gc.ServerURL, gc.Clock, gc.Rand = selfURL, env.Clock, env.Rand
	if srv.Config.TLSCert != "" {
		// Under TLS the gateway trusts exactly the server's own
		// certificate, which must be valid for the listen address.
		pem, err := os.ReadFile(srv.Config.TLSCert)
		if err != nil {
			return nil, err
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-cert holds no PEM certificate")
		}
		gc.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	}
	return gateway.New(gc)
}

func storageName(cfg config.Serve) string {
	if cfg.Database != "" {
		return "postgres"
	}
	return "sqlite"
}
