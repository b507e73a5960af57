package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gateways"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// adminTarget is how an admin command reaches the service: the data
// directory (and its SQLite database) or a PostgreSQL URL. It needs no
// network credential: access to the data directory is the credential.
type adminTarget struct {
	cfg        config.Serve
	staffEmail string
}

func (t *adminTarget) bind(fs *pflag.FlagSet) {
	fs.StringVar(&t.cfg.DataDir, "data", "./nitronet-data", "data directory of the server (env NITRONET_DATA)")
	fs.StringVar(&t.cfg.Database, "database", "", "PostgreSQL URL, if the server uses one (env NITRONET_DATABASE)")
	fs.StringVar(&t.cfg.PoolV4, "pool-v4", "100.64.0.0/10", "IPv4 pool, as given to serve")
	fs.StringVar(&t.cfg.PoolV6, "pool-v6", "fd00:6e6e::/48", "IPv6 pool, as given to serve")
	fs.StringVar(&t.cfg.KEKFile, "kek-file", "", "key-encryption key file, as given to serve (default DATA/kek)")
	fs.StringVar(&t.staffEmail, "staff", "", "the staff account you act as (env NITRONET_STAFF); its password is read without echo, from stdin, or from NITRONET_STAFF_PASSWORD")
}

// server opens the target's store and assembles every service on it, as
// `serve` does, without listening. The caller closes it.
func (t *adminTarget) server(cmd *cobra.Command, env *Env) (*server.Server, error) {
	st, err := t.open(cmd, env)
	if err != nil {
		return nil, err
	}
	srv, err := server.Assemble(t.cfg, st, server.Deps{
		Logger: slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Clock:  env.Clock, Rand: env.Rand, Stdout: io.Discard,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	return srv, nil
}

// asStaff opens the target, authenticates the staff member the command
// acts as, checks that their role allows action (unless action is ""),
// runs fn, and closes everything.
func (t *adminTarget) asStaff(cmd *cobra.Command, env *Env, action string, fn func(srv *server.Server, p staff.Principal) error) error {
	srv, err := t.server(cmd, env)
	if err != nil {
		return err
	}
	defer srv.Close()
	p, err := t.principal(cmd, env, srv)
	if err != nil {
		return err
	}
	if action != "" {
		if err := staff.Authorize(p, action); err != nil {
			return err
		}
	}
	return fn(srv, p)
}

// principal authenticates the staff member the command acts as.
func (t *adminTarget) principal(cmd *cobra.Command, env *Env, srv *server.Server) (staff.Principal, error) {
	email := t.staffEmail
	if email == "" {
		email = env.Getenv("NITRONET_STAFF")
	}
	if email == "" {
		return staff.Principal{}, errors.New("--staff EMAIL is required: the staff account you act as")
	}
	pw := env.Getenv("NITRONET_STAFF_PASSWORD")
	if pw == "" {
		var err error
		if pw, err = readSecret(env, "Staff password: "); err != nil {
			return staff.Principal{}, err
		}
	}
	c := staff.Credentials{Email: email, Password: pw, Code: env.Getenv("NITRONET_STAFF_CODE")}
	p, err := srv.Staff.Check(cmd.Context(), c)
	if errs.Is(err, errs.Precondition) && c.Code == "" {
		// The account has a second factor: ask for the current code.
		if c.Code, err = readSecret(env, "Two-factor code: "); err != nil {
			return staff.Principal{}, err
		}
		p, err = srv.Staff.Check(cmd.Context(), c)
	}
	return p, err
}

// open validates the target and opens its store.
func (t *adminTarget) open(cmd *cobra.Command, env *Env) (store.Store, error) {
	if err := config.ApplyEnv(cmd.Flags(), env.Getenv); err != nil {
		return nil, err
	}
	c := config.Default()
	c.DataDir, c.Database, c.PoolV4, c.PoolV6, c.KEKFile = t.cfg.DataDir, t.cfg.Database, t.cfg.PoolV4, t.cfg.PoolV6, t.cfg.KEKFile
	c.Retention = t.cfg.Retention // --retention of `admin retention run|rules`
	if err := c.Validate(); err != nil {
		return nil, err
	}
	t.cfg = c
	return server.OpenStore(cmd.Context(), c, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func newAdminCmd(env *Env) *cobra.Command {
	c := &cobra.Command{Use: "admin", Short: "Operator tasks, acting on the data directory or database directly"}
	c.AddCommand(newAdminGatewayCmd(env), newAdminStaffCmd(env), newAdminAuditCmd(env), newAdminHoldCmd(env),
		newAdminPolicyCmd(env), newAdminAnnounceCmd(env), newAdminNoticesCmd(env), newAdminRetentionCmd(env), newAdminRecordsCmd(env))
	c.AddCommand(newAdminDisclosureCmd(env), newAdminTransparencyCmd(env), newAdminProcessorCmd(env), newAdminStatsCmd(env))
	c.AddCommand(newAdminPrivacyCmd(env))
	return c
}

func newAdminGatewayCmd(env *Env) *cobra.Command {
	c := &cobra.Command{Use: "gateway", Short: "Manage gateways"}
	var t adminTarget
	var region, endpoint string
	add := &cobra.Command{
		Use:   "add --region NAME --endpoint HOST:PORT",
		Short: "Create a gateway record; prints its one-time enrollment token alone on stdout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := t.open(cmd, env)
			if err != nil {
				return err
			}
			defer st.Close()
			svc, err := gateways.New(gateways.Config{Store: st, Logger: slog.New(slog.NewTextHandler(env.Stderr, nil)), Clock: env.Clock, Rand: env.Rand})
			if err != nil {
				return err
			}
			g, tok, err := svc.Add(cmd.Context(), region, endpoint)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, tok)
			fmt.Fprintf(env.Stderr, "Gateway %s (%s, %s) created. Enroll it with:\n  nitronet gateway --server URL --token TOKEN\n", g.ID, g.Region, g.Endpoint)
			return nil
		},
	}
	t.bind(add.Flags())
	add.Flags().StringVar(&region, "region", "", "region name, e.g. eu-west")
	add.Flags().StringVar(&endpoint, "endpoint", "", "HOST:PORT that clients dial")
	var lt adminTarget
	list := &cobra.Command{
		Use:   "list",
		Short: "List gateways",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := lt.open(cmd, env)
			if err != nil {
				return err
			}
			defer st.Close()
			gs, err := st.Gateways(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tREGION\tENDPOINT\tENROLLED\tLAST SEEN")
			for _, g := range gs {
				seen := "-"
				if g.LastSeen != nil {
					seen = g.LastSeen.UTC().Format("2006-01-02 15:04:05Z")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", g.ID, g.Region, g.Endpoint, g.PublicKey != "", seen)
			}
			return tw.Flush()
		},
	}
	lt.bind(list.Flags())
	c.AddCommand(add, list)
	return c
}
