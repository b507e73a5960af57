package cli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nitronet/nitronet/internal/client"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/spf13/cobra"
)

func TestInCLITerms(t *testing.T) {
	cmd := &cobra.Command{Use: "verify"}
	cmd.Flags().String("mobile-code", "", "")
	inputs(cmd, "password", "password", "id", "ID")
	api := func(field string) error {
		return fmt.Errorf("call: %w", &client.APIError{Status: 400, Code: "invalid", Message: "refused", Field: field})
	}
	plain := errors.New("no network")
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"API field spelled like a flag", api("mobile_code"), "--mobile-code: refused"},
		{"API field named by inputs", api("id"), "ID: refused"},
		{"prompt", api("password"), "password: refused"},
		{"local domain error", errs.Field(errs.Invalid, "mobile_code", "refused"), "--mobile-code: refused"},
		{"a field the command does not set", api("email_code"), api("email_code").Error()},
		{"no field", api(""), api("").Error()},
		{"not a domain error", plain, "no network"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := inCLITerms(cmd, c.err)
			if got.Error() != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
			if !errors.Is(got, c.err) {
				t.Errorf("%v lost its cause %v", got, c.err)
			}
		})
	}
	if inCLITerms(nil, api("mobile_code")) == nil || inCLITerms(cmd, nil) != nil {
		t.Error("nil command or error mishandled")
	}
}
