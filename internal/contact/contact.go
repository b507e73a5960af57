// Package contact validates and normalises the contact identifiers an
// account holds: an email address and a mobile number.
//
// Normalisation gives every identifier exactly one spelling, so that blind
// indexes (HMAC of the normalised form) match whatever way a user types it.
// Every normaliser here is idempotent: normalising its own output returns the
// same string. Error messages never contain the input, so they are safe to log
// and to show to the client.
package contact

import (
	"strings"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/net/idna"

	"github.com/nitronet/nitronet/internal/errs"
)

// Limits from RFC 5321 section 4.5.3.1 (as corrected by erratum 1690).
const (
	maxEmailLen  = 254
	maxLocalLen  = 64
	maxDomainLen = 253
	maxLabelLen  = 63
)

// maxInputLen bounds the work done on hostile input before any parsing. It is
// generous enough for any Unicode address that could normalise to at most
// maxEmailLen bytes, plus surrounding white space.
const maxInputLen = 1024

// NormalizeEmail trims surrounding white space from s, validates it and
// returns its normalised form.
//
// s must be a single bare addr-spec, "local@domain": no display name, no angle
// brackets, no comments, no quoted local part, no domain literal. The local
// part must be a dot-atom of ASCII characters (RFC 5322 atext) of at most 64
// bytes; it is lowercased. The domain is mapped and converted to its IDNA
// ASCII form (UTS #46 non-transitional lookup processing, so "Bücher.example"
// becomes "xn--bcher-kva.example") and lowercased; it must have at least two
// labels, each of 1 to 63 letters, digits or hyphens not starting or ending
// with a hyphen, and a top-level label that is not all digits. A trailing dot
// is rejected. The result is at most 254 bytes.
//
// Lowercasing the local part is a deliberate policy: RFC 5321 lets a server
// treat it as case-sensitive, but no mainstream provider does, and one account
// per mailbox matters more here.
//
// On failure the error is an *errs.Error with code errs.Invalid whose message
// does not contain s. NormalizeEmail is safe for concurrent use.
func NormalizeEmail(s string) (string, error) {
	if len(s) > maxInputLen {
		return "", invalidEmail("is too long")
	}
	if !utf8.ValidString(s) {
		return "", invalidEmail("is not valid UTF-8")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", invalidEmail("is empty")
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", invalidEmail("must contain an @")
	}
	local, domain := s[:at], s[at+1:]
	if err := checkLocal(local); err != nil {
		return "", err
	}
	d, err := normalizeDomain(domain)
	if err != nil {
		return "", err
	}
	out := strings.ToLower(local) + "@" + d
	if len(out) > maxEmailLen {
		return "", invalidEmail("is longer than 254 bytes")
	}
	return out, nil
}

// checkLocal validates an unquoted dot-atom local part.
func checkLocal(local string) error {
	switch {
	case local == "":
		return invalidEmail("has an empty local part")
	case len(local) > maxLocalLen:
		return invalidEmail("has a local part longer than 64 bytes")
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return invalidEmail("has a misplaced dot in the local part")
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c != '.' && !isAtext(c) {
			return invalidEmail("has a character that is not allowed in the local part")
		}
	}
	return nil
}

// isAtext reports whether c is an RFC 5322 atext character.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// normalizeDomain converts a domain to lowercase IDNA ASCII and checks it is
// a plausible public host name.
func normalizeDomain(domain string) (string, error) {
	if domain == "" {
		return "", invalidEmail("has an empty domain")
	}
	if strings.HasPrefix(domain, "[") {
		return "", invalidEmail("must not use an address literal as its domain")
	}
	// Built per call: a Profile is cheap and this keeps the package free of
	// package-level state.
	p := idna.New(
		idna.MapForLookup(),
		idna.Transitional(false),
		idna.BidiRule(),
		idna.ValidateLabels(true),
		idna.StrictDomainName(true),
		idna.VerifyDNSLength(true),
	)
	a, err := p.ToASCII(domain)
	if err != nil {
		return "", invalidEmail("has an invalid domain")
	}
	a = strings.ToLower(a) // already lowercase after mapping; cheap insurance
	if len(a) > maxDomainLen {
		return "", invalidEmail("has a domain longer than 253 bytes")
	}
	labels := strings.Split(a, ".")
	if len(labels) < 2 {
		return "", invalidEmail("must have a dot in its domain")
	}
	for _, l := range labels {
		if !isLDHLabel(l) {
			return "", invalidEmail("has an invalid domain")
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return "", invalidEmail("has an invalid top-level domain")
	}
	return a, nil
}

// isLDHLabel reports whether l is a lowercase letter-digit-hyphen label of 1
// to 63 bytes that neither starts nor ends with a hyphen.
func isLDHLabel(l string) bool {
	if l == "" || len(l) > maxLabelLen || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func invalidEmail(why string) error {
	return errs.Field(errs.Invalid, "email", "email address %s", why)
}

// maxPhoneInputLen bounds hostile input. E.164 numbers have at most 15
// digits; this leaves room for generous formatting.
const maxPhoneInputLen = 64

// NormalizeMobile parses the phone number s and returns it in E.164 form, for
// example "+447911123456".
//
// s may be in international form, starting with "+", or in the national form
// of defaultRegion, a CLDR region code such as "GB" (case-insensitive). If
// defaultRegion is "", only international form is accepted. s may contain
// only ASCII digits, a leading "+", and the separators space, tab, "-", ".",
// "/", "(" and ")"; letters (vanity numbers), extensions and "tel:" URIs are
// rejected.
//
// The number must be valid according to libphonenumber's metadata and of type
// MOBILE or FIXED_LINE_OR_MOBILE (the latter covers regions such as the US
// that do not distinguish the two). Numbers in ranges reserved for fiction,
// such as the UK's 07700 900xxx, are not valid.
//
// If s is unacceptable the error is an *errs.Error with code errs.Invalid
// whose message does not contain s. If defaultRegion is not a region that
// libphonenumber supports the error is a plain (internal) error, since that is
// a configuration fault rather than bad input. NormalizeMobile is safe for
// concurrent use.
func NormalizeMobile(s, defaultRegion string) (string, error) {
	region := strings.ToUpper(strings.TrimSpace(defaultRegion))
	if region != "" && phonenumbers.GetCountryCodeForRegion(region) == 0 {
		return "", errs.E(errs.Internal, "unsupported default phone region")
	}
	if len(s) > maxPhoneInputLen {
		return "", invalidMobile("is too long")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", invalidMobile("is empty")
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			digits++
		case c == '+' && i == 0:
		case strings.IndexByte(" \t-./()", c) >= 0:
		default:
			return "", invalidMobile("has a character that is not allowed")
		}
	}
	if digits == 0 {
		return "", invalidMobile("has no digits")
	}
	if s[0] != '+' && region == "" {
		return "", invalidMobile("must be in international form, starting with +")
	}
	if region == "" {
		// libphonenumber's name for "no region"; only +E.164 parses with it.
		region = "ZZ"
	}
	n, err := phonenumbers.Parse(s, region)
	if err != nil {
		return "", invalidMobile("is not a phone number")
	}
	if n.GetExtension() != "" {
		return "", invalidMobile("must not have an extension")
	}
	if !phonenumbers.IsValidNumber(n) {
		return "", invalidMobile("is not a valid phone number")
	}
	switch phonenumbers.GetNumberType(n) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE:
	default:
		return "", invalidMobile("is not a mobile number")
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

func invalidMobile(why string) error {
	return errs.Field(errs.Invalid, "mobile", "mobile number %s", why)
}
