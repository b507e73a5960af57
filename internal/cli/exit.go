package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit statuses of the nitronet command. They are part of its interface:
// scripts test them, so a status never changes meaning. exitHelp, the root
// command's help, and README.md ("Use it") list them.
const (
	ExitOK    = 0 // success
	ExitError = 1 // the command failed: refused by the server, no network, a bad file
	// ExitUsage: the command line is wrong: an unknown command or flag,
	// missing or extra arguments, a required flag not given, a value the
	// command does not take.
	ExitUsage = 2
	// ExitNotConnected: `nitronet status` found no tunnel up, or a tunnel
	// whose gateway has not answered a handshake.
	ExitNotConnected = 3
)

// exitHelp is the exit-status section of the root command's help.
const exitHelp = `Exit status:
  0  success
  1  error (refused by the server, no network, a bad file)
  2  usage error: unknown command or flag, wrong arguments, a required flag missing
  3  status: not connected (no tunnel up, or no handshake from its gateway yet)`

// exitError is an error that carries the exit status the process ends
// with. Without err it ends silently: the command has already said what
// it had to say on stdout.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// Exit returns how the process ends after Run returned err: the exit
// status and the line to print on stderr ("" for none).
func Exit(err error) (status int, message string) {
	if err == nil {
		return ExitOK, ""
	}
	var e *exitError
	if errors.As(err, &e) {
		if e.err == nil {
			return e.code, ""
		}
		return e.code, "nitronet: " + err.Error()
	}
	return ExitError, "nitronet: " + err.Error()
}

// usageError returns an ExitUsage error about cmd: the message from
// format and args, then a hint to read cmd's help, on one line.
func usageError(cmd *cobra.Command, format string, args ...any) error {
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ")
	return &exitError{code: ExitUsage, err: fmt.Errorf("%s; run '%s --help'", msg, cmd.CommandPath())}
}

// unknownCommand is the usage error for a word that is not a subcommand
// of cmd, with cobra's suggestions of close names.
func unknownCommand(cmd *cobra.Command, word string) error {
	msg := fmt.Sprintf("unknown command %q", word)
	if cmd.HasParent() {
		msg += fmt.Sprintf(" for %q", cmd.CommandPath())
	}
	if s := cmd.SuggestionsFor(word); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", strings.Join(s, `" or "`))
	}
	return usageError(cmd, "%s", msg)
}

// requireFlags returns a usage error naming the first of cmd's flags
// names that was given no value (blank, or an empty list).
func requireFlags(cmd *cobra.Command, names ...string) error {
	for _, n := range names {
		f := cmd.Flags().Lookup(n)
		if f == nil {
			return fmt.Errorf("internal error: %s has no flag --%s", cmd.CommandPath(), n)
		}
		empty := strings.TrimSpace(f.Value.String()) == ""
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			empty = len(sv.GetSlice()) == 0
		}
		if empty {
			return usageError(cmd, "--%s is required: %s", n, f.Usage)
		}
	}
	return nil
}

// required returns a cobra PreRunE that checks, before the command runs,
// that its flags names were given (see requireFlags).
func required(names ...string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error { return requireFlags(cmd, names...) }
}

// strict makes the command tree under root refuse what it does not know
// with a usage error (ExitUsage) instead of printing help and succeeding:
// an unknown subcommand of any parent command, arguments a command does not
// take, and unknown or malformed flags. A parent command run alone prints
// its help. Call it once the tree is complete.
func strict(root *cobra.Command) {
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError(cmd, "%v", err) })
	root.SetHelpCommand(newHelpCmd())
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2
		}
		switch {
		case cmd.HasSubCommands() && !cmd.Runnable():
			// cobra runs a parent without Run by printing its help and
			// succeeding, whatever words follow it.
			cmd.Args = cobra.ArbitraryArgs
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return unknownCommand(cmd, args[0])
				}
				return cmd.Help()
			}
		case cmd.Args != nil:
			check := cmd.Args
			cmd.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					if cmd.HasSubCommands() && len(args) > 0 {
						return unknownCommand(cmd, args[0])
					}
					return usageError(cmd, "%v", err)
				}
				return nil
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// newHelpCmd is `nitronet help [command]`, which (unlike cobra's) fails
// with a usage error on an unknown topic.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usageError(cmd.Root(), "unknown help topic %q", strings.Join(args, " "))
			}
			target.InitDefaultHelpFlag() // so that the help lists -h too
			return target.Help()
		},
	}
}
