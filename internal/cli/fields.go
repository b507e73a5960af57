package cli

import (
	"errors"
	"strings"

	"github.com/nitronet/nitronet/internal/client"
	"github.com/spf13/cobra"
)

// Errors in the CLI's terms. The API names the request field an error is
// about in its JSON error body ({"error": {"code", "message", "field"}});
// the CLI restates such an error as being about the flag, argument or
// prompt through which its user gave that value. It never reads the
// message text. Before calling the API, commands check their own inputs
// (requireFlags, usageError) and name them.

// inputPrefix starts the cobra annotation keys set by inputs.
const inputPrefix = "nitronet.input."

// inputs records on c the CLI's name for API request fields that c fills
// from something other than a flag spelled like the field (an argument or
// a prompt), as pairs: field, name. It returns c.
func inputs(c *cobra.Command, pairs ...string) *cobra.Command {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		c.Annotations[inputPrefix+pairs[i]] = pairs[i+1]
	}
	return c
}

// inputName returns how cmd's user gives the value of the API request
// field: "--flag" if cmd has a flag spelled like the field (underscores as
// dashes), else the name recorded with inputs, else "".
func inputName(cmd *cobra.Command, field string) string {
	if field == "" {
		return ""
	}
	if f := cmd.Flags().Lookup(strings.ReplaceAll(field, "_", "-")); f != nil {
		return "--" + f.Name
	}
	return cmd.Annotations[inputPrefix+field]
}

// inputError is an API error about one input of a command.
type inputError struct {
	input string
	err   *client.APIError
}

func (e *inputError) Error() string { return e.input + ": " + e.err.Message }
func (e *inputError) Unwrap() error { return e.err }

// inCLITerms returns err, from running cmd, with an API error about a
// request field restated as an error about the input of cmd that sets it.
// Other errors are returned unchanged.
func inCLITerms(cmd *cobra.Command, err error) error {
	var ae *client.APIError
	if cmd == nil || !errors.As(err, &ae) {
		return err
	}
	if name := inputName(cmd, ae.Field); name != "" {
		return &inputError{input: name, err: ae}
	}
	return err
}
