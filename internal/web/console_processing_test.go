package web_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
)

// TestConsoleAccountShowsProcessing: the console's account page says
// whether a restriction or objection is in force and what it stops.
func TestConsoleAccountShowsProcessing(t *testing.T) {
	e := newEnv(t)
	const pw = "correct horse battery"
	e.client(t).signup("objector@example.com", "+447911100833", pw)
	acct := e.accountID("objector@example.com", pw)
	e.addStaff("po@staff.example", staff.RolePrivacyOfficer)
	c := e.client(t)
	c.staffLogin("po@staff.example")
	field := func(body, id string) string {
		m := regexp.MustCompile(`id="` + id + `">(.*?)</dd>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("account page lacks #%s\n%s", id, body)
		}
		return m[1]
	}
	for _, tc := range []struct {
		flags                        store.Flags
		restricted, objected, stoppd string
	}{
		{store.Flags{}, "none", "none", "nothing"},
		{store.Flags{Objected: true}, "none", `<span class="tag tag-warn">in force</span>`, "announcement, statistics"},
		{store.Flags{Restricted: true}, `<span class="tag tag-warn">in force</span>`, "none", "announcement, statistics"},
	} {
		if err := e.srv.Store.SetFlags(context.Background(), acct, tc.flags); err != nil {
			t.Fatal(err)
		}
		resp, body := c.get("/console/accounts/" + acct)
		if resp.StatusCode != 200 {
			t.Fatalf("account page: %d", resp.StatusCode)
		}
		if got := field(body, "account-restricted"); got != tc.restricted {
			t.Errorf("%+v: restriction shown as %q, want %q", tc.flags, got, tc.restricted)
		}
		if got := field(body, "account-objected"); got != tc.objected {
			t.Errorf("%+v: objection shown as %q, want %q", tc.flags, got, tc.objected)
		}
		if got := field(body, "account-stopped"); got != tc.stoppd {
			t.Errorf("%+v: stopped shown as %q, want %q", tc.flags, got, tc.stoppd)
		}
	}
}
