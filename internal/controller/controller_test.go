package controller

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func full() Identity {
	return Identity{Name: "Example VPN GmbH", Address: "1 Example Street, 10115 Berlin, Germany", Email: "privacy@example.org",
		Phone: "+49 30 1234567", DPO: DPO{Name: "Dana Officer", Email: "dpo@example.org"},
		Representative: Representative{Name: "Rep SA", Address: "Rue 1, 1000 Brussels, Belgium", Email: "rep@example.eu"}}
}

func TestValidate(t *testing.T) {
	if err := full().Validate(); err != nil {
		t.Fatalf("full identity: %v", err)
	}
	if err := (Identity{}).Validate(); err != nil {
		t.Fatalf("empty identity: %v, want nil (nothing configured is allowed)", err)
	}
	tests := []struct {
		name   string
		modify func(*Identity)
		flag   string
	}{
		{"display-name email", func(id *Identity) { id.Email = "Privacy <privacy@example.org>" }, FlagEmail},
		{"not an email", func(id *Identity) { id.DPO.Email = "dpo at example" }, FlagDPOEmail},
		{"rep email", func(id *Identity) { id.Representative.Email = "@x" }, FlagRepEmail},
		{"national phone", func(id *Identity) { id.Phone = "030 1234567" }, FlagPhone},
		{"phone letters", func(id *Identity) { id.Phone = "+49 30 CALLNOW" }, FlagPhone},
		{"phone too long", func(id *Identity) { id.Phone = "+1234567890123456" }, FlagPhone},
		{"phone too short", func(id *Identity) { id.Phone = "+1234" }, FlagPhone},
		{"newline in address", func(id *Identity) { id.Address = "1 Example Street\nBerlin" }, FlagAddress},
		{"long name", func(id *Identity) { id.Name = strings.Repeat("n", 301) }, FlagName},
		{"invalid utf-8", func(id *Identity) { id.Name = "\xff" }, FlagName},
		{"dpo without email", func(id *Identity) { id.DPO.Email = "" }, FlagDPOEmail},
		{"rep without name", func(id *Identity) { id.Representative.Name = "" }, FlagRepName},
		{"rep without contact", func(id *Identity) { id.Representative.Address, id.Representative.Email = "", "" }, FlagRepAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := full()
			tt.modify(&id)
			err := id.Validate()
			if err == nil || !strings.Contains(err.Error(), "--"+tt.flag) {
				t.Errorf("Validate() = %v, want an error naming --%s", err, tt.flag)
			}
		})
	}
	// A DPO reachable by email alone is enough.
	if err := (Identity{DPO: DPO{Email: "dpo@example.org"}}).Validate(); err != nil {
		t.Errorf("DPO with email only: %v", err)
	}
}

func TestMissing(t *testing.T) {
	if got := (Identity{}).Missing(); !slices.Equal(got, []string{FlagName, FlagAddress, FlagEmail}) {
		t.Errorf("Missing() of empty = %v", got)
	}
	if got := (Identity{Name: "X", Email: "x@example.org"}).Missing(); !slices.Equal(got, []string{FlagAddress}) {
		t.Errorf("Missing() = %v, want [%s]", got, FlagAddress)
	}
	if got := full().Missing(); got != nil {
		t.Errorf("Missing() of full = %v, want nil", got)
	}
}

func TestRowsText(t *testing.T) {
	rows := Identity{Name: "Example VPN GmbH", DPO: DPO{Name: "Dana", Email: "dpo@example.org"}}.Rows()
	want := []struct{ user, operator string }{
		{"Example VPN GmbH", "Example VPN GmbH"},
		{"not stated by the operator", "not configured (set --controller-address)"},
		{"not stated by the operator", "not configured (set --controller-email)"},
		{"not stated by the operator", "not configured (set --controller-phone)"},
		{"Dana, dpo@example.org", "Dana, dpo@example.org"},
		{"none designated", "none designated (if there is one, set --controller-representative-name and --controller-representative-address)"},
	}
	if len(rows) != len(want) {
		t.Fatalf("Rows() has %d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		if got := r.Text(false); got != want[i].user {
			t.Errorf("%s for users = %q, want %q", r.Label, got, want[i].user)
		}
		if got := r.Text(true); got != want[i].operator {
			t.Errorf("%s for the operator = %q, want %q", r.Label, got, want[i].operator)
		}
	}
}

func TestJSON(t *testing.T) {
	b, err := json.Marshal(Identity{Name: "Example VPN GmbH", Email: "privacy@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"name":"Example VPN GmbH","email":"privacy@example.org"}`; got != want {
		t.Errorf("JSON = %s, want %s (unset fields and roles left out)", got, want)
	}
	b, _ = json.Marshal(full())
	var back Identity
	if err := json.Unmarshal(b, &back); err != nil || back != full() {
		t.Errorf("round trip = %+v, %v; want %+v", back, err, full())
	}
	for _, key := range []string{`"dpo":{`, `"eu_representative":{`, `"phone":`, `"address":`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
}

func TestNormalize(t *testing.T) {
	id := Identity{Name: "  Example  ", DPO: DPO{Email: " dpo@example.org\t"}}.Normalize()
	if id.Name != "Example" || id.DPO.Email != "dpo@example.org" {
		t.Errorf("Normalize() = %+v", id)
	}
}

// FuzzValidate: Validate never panics, and whatever it accepts has no
// control characters and renders.
func FuzzValidate(f *testing.F) {
	f.Add("Example VPN GmbH", "privacy@example.org", "+49 30 1234567", "Dana", "dpo@example.org")
	f.Add("", "", "+", "x", "")
	f.Add("\x00", "a@b", "+\xff1234567", "", "@")
	f.Fuzz(func(t *testing.T, name, email, phone, dpoName, dpoEmail string) {
		id := Identity{Name: name, Email: email, Phone: phone, DPO: DPO{Name: dpoName, Email: dpoEmail}}
		if id.Validate() != nil {
			return
		}
		for _, r := range id.Rows() {
			if strings.ContainsAny(r.Text(true), "\n\r\x00") {
				t.Errorf("accepted %+v renders a control character: %q", id, r.Text(true))
			}
		}
	})
}
