package cli

import (
	"encoding/json"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// JSON output. A command with --json prints one JSON value on stdout: an
// object with snake_case keys, times in RFC 3339 (UTC, whole seconds),
// absent times as null and empty lists as []. The shapes are documented in
// docs/cli.md; a key, once there, keeps its name and meaning. Each command
// prints its own view type (not an API or service type), so that a change
// elsewhere cannot change the output by accident.

// jsonFlag adds the --json flag to c, bound to p.
func jsonFlag(c *cobra.Command, p *bool) {
	c.Flags().BoolVar(p, "json", false, "print JSON instead of text (the keys are listed in docs/cli.md)")
}

// printJSON writes v to w as indented JSON and a newline, without
// escaping HTML characters.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// jsonTime is a time in JSON output: RFC 3339 in UTC, whole seconds.
type jsonTime time.Time

// MarshalJSON implements json.Marshaler.
func (t jsonTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Time(t).UTC().Format(time.RFC3339))
}

// optTime returns t as a *jsonTime, nil (JSON null) if t is nil or zero.
func optTime(t *time.Time) *jsonTime {
	if t == nil || t.IsZero() {
		return nil
	}
	j := jsonTime(*t)
	return &j
}

// nonNil returns s, or an empty slice for nil (JSON [] instead of null).
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
