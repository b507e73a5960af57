package cli

import (
	"strings"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/spf13/cobra"
)

// Errors in the CLI's terms. A domain error about one input names it by
// its API name (errs.Error.Field; from the API it comes in the JSON error
// body's "field", and client.APIError unwraps to it). The CLI restates such
// an error as being about the flag, argument or prompt through which its
// user gave that value. It never reads the message text. Before calling
// the API, commands check their own inputs (requireFlags, usageError) and
// name them.

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

// inputError is a domain error about one input of a command, restated
// in the command's terms.
type inputError struct {
	input string // "--flag", "ARG" or "prompt"
	msg   string // the domain error's message
	err   error
}

func (e *inputError) Error() string { return e.input + ": " + e.msg }
func (e *inputError) Unwrap() error { return e.err }

// inCLITerms returns err, from running cmd, with a domain error about an
// input (errs.FieldOf) restated as an error about the flag, argument or
// prompt of cmd that sets that input. Other errors, and errors about an
// input cmd has no name for, are returned unchanged.
func inCLITerms(cmd *cobra.Command, err error) error {
	field := errs.FieldOf(err)
	if cmd == nil || field == "" {
		return err
	}
	if name := inputName(cmd, field); name != "" {
		return &inputError{input: name, msg: errs.MessageOf(err), err: err}
	}
	return err
}
