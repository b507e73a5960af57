package cli

import (
	"errors"
	"io"
	"log/slog"
	"strings"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// admin is what every `nitronet admin` command shares: the server's
// settings, bound as persistent flags of `admin` and loaded exactly as
// `serve` loads them (flags, NITRONET_* variables, --config file), and
// the staff member the command acts as. Access to the data directory or
// database is the credential for the staff bootstrap alone (`admin staff
// add` while no enabled admin exists); everything else acts as a staff
// member, and the service it calls decides whether that member may.
type admin struct {
	env        *Env
	cfg        config.Settings
	staffEmail string
}

// serveOnly are settings that mean something only to a running server;
// admin commands accept them (a shared config file may set them) but hide
// them from their help.
var serveOnly = []string{"listen", "tls-cert", "tls-key", "session-ttl", "device-limit", "gateway",
	"behind-proxy", "trusted-proxy", "insecure-http", "metrics-listen", "metrics-token"}

func newAdminCmd(env *Env) *cobra.Command {
	a := &admin{env: env}
	c := &cobra.Command{
		Use:   "admin",
		Short: "Operator tasks, acting on the data directory or database directly",
		Long: "Operator tasks. They take the same settings as `nitronet serve` (flags, NITRONET_*\n" +
			"variables or --config FILE), so they reach the same database, key-encryption key,\n" +
			"mail relay and SMS webhook as the server.",
	}
	fs := c.PersistentFlags()
	a.cfg.Bind(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		for _, name := range serveOnly {
			if f.Name == name || strings.HasPrefix(f.Name, "gateway-") || strings.HasPrefix(f.Name, "acme-") {
				f.Hidden = true
			}
		}
	})
	fs.StringVar(&a.staffEmail, "staff", "", "the staff account you act as (env NITRONET_STAFF); its password is read without echo, from stdin, or from NITRONET_STAFF_PASSWORD")
	c.AddCommand(newAdminGatewayCmd(a), newAdminStaffCmd(a), newAdminAuditCmd(a), newAdminHoldCmd(a),
		newAdminPolicyCmd(a), newAdminAnnounceCmd(a), newAdminNoticesCmd(a), newAdminRetentionCmd(a), newAdminRecordsCmd(a))
	c.AddCommand(newAdminDisclosureCmd(a), newAdminTransparencyCmd(a), newAdminProcessorCmd(a), newAdminStatsCmd(a))
	c.AddCommand(newAdminPrivacyCmd(a), newAdminAccountCmd(a), newAdminBreachCmd(a), newAdminKEKCmd(a))
	c.AddCommand(newAdminBackupCmd(a), newAdminRestoreCmd(a))
	return c
}

// server loads the settings and builds the server through the one
// composition root (server.New), as `serve` does, without listening. The
// caller closes it.
func (a *admin) server(cmd *cobra.Command) (*server.Server, error) {
	if err := config.Load(cmd.Flags(), a.env.Getenv); err != nil {
		return nil, err
	}
	level := slog.LevelWarn
	_ = level.UnmarshalText([]byte(a.cfg.LogLevel))
	level = max(level, slog.LevelWarn) // admin output is for the operator, not a log
	return server.New(cmd.Context(), a.cfg, server.Deps{
		Logger: newLogger(a.env.Stderr, a.cfg.LogFormat, level.String()),
		Clock:  a.env.Clock, Rand: a.env.Rand, Stdout: io.Discard,
	})
}

// asStaff builds the server, authenticates the staff member the command
// acts as, runs fn, and closes everything. Whether the member may do what
// fn asks is for the service fn calls to decide. Without a staff member
// named it is a usage error, before anything is opened.
func (a *admin) asStaff(cmd *cobra.Command, fn func(srv *server.Server, p staff.Principal) error) error {
	if err := a.requireStaff(cmd); err != nil {
		return err
	}
	srv, err := a.server(cmd)
	if err != nil {
		return err
	}
	defer srv.Close()
	p, err := a.principal(cmd, srv)
	if err != nil {
		return err
	}
	return fn(srv, p)
}

// withArgs is asStaff for a cobra RunE that needs the arguments.
func (a *admin) withArgs(fn func(cmd *cobra.Command, srv *server.Server, p staff.Principal, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error { return fn(cmd, srv, p, args) })
	}
}

// staffGiven reports whether the command names a staff account to act as.
func (a *admin) staffGiven() bool { return a.staffEmail != "" || a.env.Getenv("NITRONET_STAFF") != "" }

// requireStaff returns a usage error unless the command names a staff
// account to act as.
func (a *admin) requireStaff(cmd *cobra.Command) error {
	if a.staffGiven() {
		return nil
	}
	return usageError(cmd, "--staff EMAIL is required: the staff account you act as (or NITRONET_STAFF)")
}

// principal authenticates the staff member the command acts as, with one
// check of email, password and code together (staff.Check), which answers
// every failure alike: it never says whether the account has a second
// factor, so the code is gathered before asking. The code comes from
// NITRONET_STAFF_CODE; otherwise it is read (a line on stdin, or a prompt
// without echo) if NITRONET_STAFF_TOTP says the account has a second
// factor, or asked for on an interactive terminal, where an empty answer
// means none.
func (a *admin) principal(cmd *cobra.Command, srv *server.Server) (staff.Principal, error) {
	env := a.env
	email := a.staffEmail
	if email == "" {
		email = env.Getenv("NITRONET_STAFF")
	}
	if email == "" {
		return staff.Principal{}, a.requireStaff(cmd)
	}
	pw := env.Getenv("NITRONET_STAFF_PASSWORD")
	if pw == "" {
		var err error
		if pw, err = readSecret(env, "Staff password: "); err != nil {
			return staff.Principal{}, err
		}
	}
	code, err := staffCode(env)
	if err != nil {
		return staff.Principal{}, err
	}
	return srv.Staff.Check(cmd.Context(), staff.Credentials{Email: email, Password: pw, Code: code})
}

// staffCode returns the two-factor code of an admin command (see
// principal).
func staffCode(env *Env) (string, error) {
	if c := env.Getenv("NITRONET_STAFF_CODE"); c != "" {
		return c, nil
	}
	switch strings.ToLower(env.Getenv("NITRONET_STAFF_TOTP")) {
	case "1", "true", "yes", "on":
		c, err := readSecret(env, "Two-factor code: ")
		if err != nil {
			return "", errors.New("no two-factor code given (NITRONET_STAFF_TOTP is set): set NITRONET_STAFF_CODE or give it on stdin after the password")
		}
		return strings.TrimSpace(c), nil
	}
	if stdinIsTerminal(env) {
		c, err := readSecret(env, "Two-factor code (press Enter if your account has none): ")
		return strings.TrimSpace(c), err
	}
	return "", nil
}
