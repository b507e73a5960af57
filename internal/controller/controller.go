// Package controller holds the identity of the controller: the operator of
// a Nitronet installation, who decides why and how the personal data is
// processed (GDPR Art. 4(7)). The identity is stated in the record of
// processing (Art. 30(1)(a)), on the portal's home page and in every data
// export (Art. 13(1)(a), 14(1)(a)), and in the signed transparency
// report.
//
// The identity comes from the server's settings (the Flag* flags, bound by
// package config). Nothing is invented for a missing value: Rows says in
// plain words that it is not configured and, for the operator, names the
// flag that sets it. Values are plain data, safe for concurrent use.
package controller

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The flags (and, as NITRONET_<FLAG> variables and TOML keys, the
// settings) that fill an Identity.
const (
	FlagName           = "controller-name"
	FlagAddress        = "controller-address"
	FlagEmail          = "controller-email"
	FlagPhone          = "controller-phone"
	FlagDPOName        = "controller-dpo-name"
	FlagDPOEmail       = "controller-dpo-email"
	FlagRepName        = "controller-representative-name"
	FlagRepAddress     = "controller-representative-address"
	FlagRepEmail       = "controller-representative-email"
	maxLen             = 300 // bytes, every value but addresses
	maxAddressLen      = 500 // bytes
	minPhoneDigits     = 5
	maxPhoneDigits     = 15 // E.164
	phoneAllowedSymbol = " ()-./"
)

// Identity is who the controller is and how to reach them. An empty field
// is not configured. It marshals to JSON with the tags shown; empty fields
// and an undesignated DPO or representative are left out.
type Identity struct {
	Name    string `json:"name,omitempty"`    // legal name
	Address string `json:"address,omitempty"` // postal address, on one line
	Email   string `json:"email,omitempty"`   // contact for privacy matters
	Phone   string `json:"phone,omitempty"`   // international format, e.g. +49 30 1234567
	// DPO is the data protection officer (Art. 37 to 39), if one is
	// designated.
	DPO DPO `json:"dpo,omitzero"`
	// Representative is the representative in the EU (Art. 27), needed
	// when the controller is established outside it.
	Representative Representative `json:"eu_representative,omitzero"`
}

// DPO is the data protection officer's name and contact address.
type DPO struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// Representative is the controller's representative in the EU.
type Representative struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address,omitempty"`
	Email   string `json:"email,omitempty"`
}

// Validate checks id: no control characters; names and email addresses at
// most 300 bytes and addresses 500; email addresses bare (user@host);
// a phone number in international form (+ and 5 to 15 digits, spaces and
// ()-./ allowed); a DPO with a name has an email address; a representative
// has a name and an address or email. Errors name the flag.
func (id Identity) Validate() error {
	for _, f := range []struct {
		flag, v string
		max     int
	}{
		{FlagName, id.Name, maxLen}, {FlagAddress, id.Address, maxAddressLen}, {FlagEmail, id.Email, maxLen},
		{FlagPhone, id.Phone, maxLen}, {FlagDPOName, id.DPO.Name, maxLen}, {FlagDPOEmail, id.DPO.Email, maxLen},
		{FlagRepName, id.Representative.Name, maxLen}, {FlagRepAddress, id.Representative.Address, maxAddressLen},
		{FlagRepEmail, id.Representative.Email, maxLen},
	} {
		if err := checkText(f.flag, f.v, f.max); err != nil {
			return err
		}
	}
	for _, f := range []struct{ flag, v string }{
		{FlagEmail, id.Email}, {FlagDPOEmail, id.DPO.Email}, {FlagRepEmail, id.Representative.Email},
	} {
		if err := checkEmail(f.flag, f.v); err != nil {
			return err
		}
	}
	if err := checkPhone(id.Phone); err != nil {
		return err
	}
	if id.DPO.Name != "" && id.DPO.Email == "" {
		return fmt.Errorf("--%s is required with --%s: the DPO's contact details are published (Art. 37(7) GDPR)", FlagDPOEmail, FlagDPOName)
	}
	r := id.Representative
	if r != (Representative{}) {
		if r.Name == "" {
			return fmt.Errorf("--%s is required with --%s or --%s", FlagRepName, FlagRepAddress, FlagRepEmail)
		}
		if r.Address == "" && r.Email == "" {
			return fmt.Errorf("--%s or --%s is required with --%s", FlagRepAddress, FlagRepEmail, FlagRepName)
		}
	}
	return nil
}

// Normalize returns id with every value's surrounding space trimmed.
func (id Identity) Normalize() Identity {
	for _, p := range []*string{&id.Name, &id.Address, &id.Email, &id.Phone, &id.DPO.Name, &id.DPO.Email,
		&id.Representative.Name, &id.Representative.Address, &id.Representative.Email} {
		*p = strings.TrimSpace(*p)
	}
	return id
}

func checkText(flag, v string, max int) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("--%s is not valid UTF-8", flag)
	}
	if len(v) > max {
		return fmt.Errorf("--%s is longer than %d bytes", flag, max)
	}
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return fmt.Errorf("--%s must be one line without control characters (separate the parts of an address with commas)", flag)
	}
	return nil
}

func checkEmail(flag, v string) error {
	if v == "" {
		return nil
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v || a.Name != "" {
		return fmt.Errorf("--%s %q: want a plain email address such as privacy@example.org", flag, v)
	}
	return nil
}

func checkPhone(v string) error {
	if v == "" {
		return nil
	}
	digits, ok := 0, strings.HasPrefix(v, "+")
	for _, r := range v[1:] {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case !strings.ContainsRune(phoneAllowedSymbol, r):
			ok = false
		}
	}
	if !ok || digits < minPhoneDigits || digits > maxPhoneDigits {
		return fmt.Errorf("--%s %q: want an international number such as +49 30 1234567", FlagPhone, v)
	}
	return nil
}

// Missing returns the flags of the fields the record of processing needs
// (Art. 30(1)(a): the controller's name and contact details) that id
// leaves empty: name, postal address and email, in that order; nil if
// none.
func (id Identity) Missing() []string {
	var out []string
	for _, f := range []struct{ flag, v string }{{FlagName, id.Name}, {FlagAddress, id.Address}, {FlagEmail, id.Email}} {
		if f.v == "" {
			out = append(out, f.flag)
		}
	}
	return out
}

// Row is one line of the controller's identity as people read it.
type Row struct {
	Label string // e.g. "Postal address"
	Value string // "" if not configured
	// Optional is true for a role the controller may not need to fill
	// (a DPO, an EU representative): unset, it is "none designated".
	Optional bool
	// Flags are the flags that set the value.
	Flags []string
}

// Text returns the row's value or, if it is not configured, says so in
// plain words: "not stated by the operator" or "none designated" for
// readers, and for the operator (forOperator) "not configured (set
// --FLAG)" or "none designated (if there is one, set --FLAG and --FLAG)".
func (r Row) Text(forOperator bool) string {
	switch {
	case r.Value != "":
		return r.Value
	case !forOperator && r.Optional:
		return "none designated"
	case !forOperator:
		return "not stated by the operator"
	}
	flags := make([]string, len(r.Flags))
	for i, f := range r.Flags {
		flags[i] = "--" + f
	}
	if r.Optional {
		return "none designated (if there is one, set " + strings.Join(flags, " and ") + ")"
	}
	return "not configured (set " + strings.Join(flags, " and ") + ")"
}

// Rows returns id as rows: name, postal address, email, phone, data
// protection officer and EU representative, in that order. A DPO or
// representative is one row joining its parts with ", ".
func (id Identity) Rows() []Row {
	return []Row{
		{"Name", id.Name, false, []string{FlagName}},
		{"Postal address", id.Address, false, []string{FlagAddress}},
		{"Email", id.Email, false, []string{FlagEmail}},
		{"Phone", id.Phone, false, []string{FlagPhone}},
		{"Data protection officer", join(id.DPO.Name, id.DPO.Email), true, []string{FlagDPOName, FlagDPOEmail}},
		{"EU representative (Art. 27 GDPR)", join(id.Representative.Name, id.Representative.Address, id.Representative.Email),
			true, []string{FlagRepName, FlagRepAddress}},
	}
}

// join returns the non-empty parts joined with ", ".
func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ", ")
}
