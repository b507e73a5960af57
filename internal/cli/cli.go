// Package cli holds the `nitronet` command tree (cobra). Run is the whole
// program; main only passes it the process's environment.
package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/client"
	"github.com/nitronet/nitronet/internal/clientstate"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Env is the process environment the commands run in. Nothing in the
// command tree reads os.Args, os.Getenv or the standard streams directly.
type Env struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Clock  func() time.Time
	Rand   io.Reader
	// BuildInfo is the binary's build information, for `version`; nil
	// if unknown.
	BuildInfo *debug.BuildInfo
}

// Run runs the nitronet command line with args (without the program
// name). Exit turns the error it returns into the process's exit status
// and its line on stderr.
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	bi, _ := debug.ReadBuildInfo()
	env := &Env{Getenv: getenv, Stdin: stdin, Stdout: stdout, Stderr: stderr, Clock: time.Now, Rand: rand.Reader, BuildInfo: bi}
	root := NewRoot(env)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	return inCLITerms(cmd, err)
}

// NewRoot returns the root command bound to env.
func NewRoot(env *Env) *cobra.Command {
	var showVersion bool
	root := &cobra.Command{
		Use:   "nitronet",
		Short: "Nitronet: a self-hostable, no-log VPN",
		Long: "Nitronet: a self-hostable, no-log VPN. One binary runs the control server (serve),\n" +
			"WireGuard gateways (gateway), the client (signup, device, up, status, ...) and the\n" +
			"operator tools (admin). Client commands that talk to a control server take --server;\n" +
			"list and status commands take --json.\n\n" + exitHelp,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) > 0:
				return unknownCommand(cmd, args[0])
			case showVersion:
				return printVersion(env, false)
			default:
				return cmd.Help()
			}
		},
	}
	root.Flags().BoolVar(&showVersion, "version", false, "print the version and exit")
	g := &globals{env: env}
	root.AddCommand(
		newServeCmd(env),
		newSignupCmd(g), newLoginCmd(g), newLogoutCmd(g), newVerifyCmd(g), newWhoamiCmd(g),
		newPasswordCmd(g), newDeviceCmd(g), newGatewayCmd(g),
		newUpCmd(g), newDownCmd(g), newStatusCmd(g),
		newAdminCmd(env),
	)
	root.AddCommand(newTransparencyCmd(env))
	root.AddCommand(newPrivacyCmd(g), newInboxCmd(g), newPolicyCmd(g))
	root.AddCommand(newVersionCmd(env))
	root.InitDefaultCompletionCmd()
	strict(root)
	return root
}

// globals holds what every client command needs.
type globals struct {
	env    *Env
	server string // --server, on the commands that talk to a control server
}

// serverFlag adds --server to c, a command that talks to a control server,
// as a persistent flag so that c's subcommands take it too. It returns c.
func (g *globals) serverFlag(c *cobra.Command) *cobra.Command {
	c.PersistentFlags().StringVar(&g.server, "server", "", "control server URL (env NITRONET_SERVER; default: the one you logged in to, or http://127.0.0.1:8080)")
	return c
}

func (g *globals) dir() (clientstate.Dir, error) { return clientstate.Default(g.env.Getenv) }

// client returns an API client for the chosen server with the saved token.
func (g *globals) client() (*client.Client, clientstate.State, error) {
	d, err := g.dir()
	if err != nil {
		return nil, clientstate.State{}, err
	}
	st, err := d.Load()
	if err != nil {
		return nil, st, err
	}
	server := g.server
	if server == "" {
		server = g.env.Getenv("NITRONET_SERVER")
	}
	if server == "" {
		server = st.Server
	}
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	tok := st.Token
	if st.Server != "" && strings.TrimRight(st.Server, "/") != strings.TrimRight(server, "/") {
		tok = "" // a token is only good for the server that issued it
	}
	st.Server = server
	return client.New(server, tok, nil), st, nil
}

// authed is client() for commands that need a login.
func (g *globals) authed() (*client.Client, clientstate.State, error) {
	c, st, err := g.client()
	if err != nil {
		return nil, st, err
	}
	if c.Token == "" {
		return nil, st, errors.New("not logged in: run 'nitronet login' first")
	}
	return c, st, nil
}

// stdinIsTerminal reports whether env's standard input is a terminal.
func stdinIsTerminal(env *Env) bool {
	f, ok := env.Stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// readSecret reads a password: without echo from a terminal, or one line
// from stdin when it is not a terminal.
func readSecret(env *Env, prompt string) (string, error) {
	if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(env.Stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	// One byte at a time, so that nothing after the line is consumed: a
	// later prompt (a two-factor code) reads the next line.
	var line []byte
	var b [1]byte
	for len(line) < 4096 {
		n, err := env.Stdin.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			line = append(line, b[0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				break
			}
			return "", errors.New("no password given on stdin")
		}
	}
	return strings.TrimRight(string(line), "\r"), nil
}

// newLogger builds the process logger from format and level names.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
