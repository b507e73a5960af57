package contact

// The normalisers as they were before the canonical form folded width and
// other compatibility variants (commit f53256c), copied whole. Blind
// indexes stored by that version were computed from these results;
// TestCanonicalFormKeepsIndexes and FuzzCanonicalFormKeepsIndexes check
// that the current normalisers give the same result for everything these
// accepted, so no stored index needs re-deriving. Do not change this file:
// it is the reference.

import (
	"strings"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/net/idna"

	"github.com/nitronet/nitronet/internal/errs"
)

func legacyNormalizeEmail(s string) (string, error) {
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
	if err := legacyCheckLocal(local); err != nil {
		return "", err
	}
	d, err := legacyNormalizeDomain(domain)
	if err != nil {
		return "", err
	}
	out := strings.ToLower(local) + "@" + d
	if len(out) > maxEmailLen {
		return "", invalidEmail("is longer than 254 bytes")
	}
	return out, nil
}

func legacyCheckLocal(local string) error {
	switch {
	case local == "":
		return invalidEmail("has an empty local part")
	case len(local) > maxLocalLen:
		return invalidEmail("has a local part longer than 64 bytes")
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return invalidEmail("has a misplaced dot in the local part")
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c != '.' && !legacyIsAtext(c) {
			return invalidEmail("has a character that is not allowed in the local part")
		}
	}
	return nil
}

func legacyIsAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func legacyNormalizeDomain(domain string) (string, error) {
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
		if !legacyIsLDHLabel(l) {
			return "", invalidEmail("has an invalid domain")
		}
	}
	if legacyAllDigits(labels[len(labels)-1]) {
		return "", invalidEmail("has an invalid top-level domain")
	}
	return a, nil
}

func legacyIsLDHLabel(l string) bool {
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

func legacyAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func legacyNormalizeMobile(s, defaultRegion string) (string, error) {
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
