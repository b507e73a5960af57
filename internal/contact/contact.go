// Package contact validates and normalises the contact identifiers an
// account holds: an email address and a mobile number.
//
// Normalisation gives every identifier exactly one spelling, its canonical
// form, so that blind indexes (HMAC of the canonical form), uniqueness
// checks and the rate limiters' keys all agree whatever way a user types
// it: NormalizeEmail and NormalizeMobile are the only functions in the
// program that fold case, width or script variants of a contact, and
// everything that compares contacts goes through them. Every normaliser here
// is idempotent: normalising its own output returns the same string. Error
// messages never contain the input, so they are safe to log and to show to
// the client.
//
// The canonical forms only ever gained spellings they accept: every value
// an earlier version accepted still normalises to what it did then (a test
// checks this against that version), so the blind indexes already stored
// stay valid and need no re-indexing.
package contact

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"

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

// NormalizeEmail returns the canonical form of the email address s, or an
// error if s is not acceptable.
//
// s is first mapped to Unicode compatibility form (NFKC), which folds
// full-width and other compatibility characters to their plain forms (so
// "ｂｏｂ＠ｅxample．com" is "bob@example.com", and the Kelvin sign is "K"),
// and surrounding white space is trimmed. What remains must be a single
// bare addr-spec, "local@domain": no display name, no angle
// brackets, no comments, no quoted local part, no domain literal. The local
// part must be a dot-atom of ASCII characters (RFC 5322 atext) of at most 64
// bytes; it is lowercased. The domain is mapped and converted to its IDNA
// ASCII form (UTS #46 non-transitional lookup processing, so "Bücher.example"
// becomes "xn--bcher-kva.example") and lowercased; it must have at least two
// labels, each of 1 to 63 letters, digits or hyphens not starting or ending
// with a hyphen, and a top-level label that is not all digits. A trailing dot
// is rejected. The result is at most 254 bytes.
//
// Characters that only look alike are not folded: a dotless ı, a Cyrillic а
// or a Greek ο in the domain make a different domain (and CheckNewEmail
// refuses labels that mix scripts), and non-ASCII letters in the local part,
// such as the Turkish İ, are refused rather than lowercased.
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
	s = norm.NFKC.String(s)
	if len(s) > maxInputLen {
		return "", invalidEmail("is too long")
	}
	return normalizeEmail(s)
}

// normalizeEmail is NormalizeEmail after the compatibility mapping.
func normalizeEmail(s string) (string, error) {
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
// digits; this leaves room for generous formatting. maxPhoneRawLen bounds
// the input before digits in other scripts are folded to ASCII (a full-width
// digit takes three bytes).
const (
	maxPhoneInputLen = 64
	maxPhoneRawLen   = 4 * maxPhoneInputLen
)

// NormalizeMobile parses the phone number s and returns it in E.164 form, for
// example "+447911123456".
//
// s may be in international form, starting with "+", or in the national form
// of defaultRegion, a CLDR region code such as "GB" (case-insensitive). If
// defaultRegion is "", only international form is accepted. s is first
// mapped to Unicode compatibility form (NFKC, which folds full-width digits
// and signs) and decimal digits of other scripts, such as Arabic-Indic ones,
// are folded to ASCII. Then s may contain only digits, a leading "+", and
// the separators space, tab, "-", ".", "/", "(" and ")"; letters (vanity
// numbers), extensions and "tel:" URIs are rejected.
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
	if len(s) > maxPhoneRawLen || !utf8.ValidString(s) {
		return "", invalidMobile("is too long or not text")
	}
	s = foldDigits(norm.NFKC.String(s))
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

// foldDigits replaces every decimal digit (Unicode category Nd) with its
// ASCII digit. Unicode lays out each script's digits as runs of ten, zero
// first, so a digit's value is its offset in its range of the Nd table
// modulo ten.
func foldDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf || !unicode.Is(unicode.Nd, r) {
			return r
		}
		for _, rg := range unicode.Nd.R16 {
			if lo, hi := rune(rg.Lo), rune(rg.Hi); rg.Stride == 1 && lo <= r && r <= hi {
				return '0' + (r-lo)%10
			}
		}
		for _, rg := range unicode.Nd.R32 {
			if lo, hi := rune(rg.Lo), rune(rg.Hi); rg.Stride == 1 && lo <= r && r <= hi {
				return '0' + (r-lo)%10
			}
		}
		return r
	}, s)
}

func invalidMobile(why string) error {
	return errs.Field(errs.Invalid, "mobile", "mobile number %s", why)
}

// CheckNewEmail returns an Invalid error (field "email") if the canonical
// address email (NormalizeEmail's result) is not acceptable as a new
// contact: one whose domain has a label mixing scripts, such as Latin
// letters with a Cyrillic "а" ("exаmple.com"), a common way to make an
// address that looks like someone else's. It follows the "highly
// restrictive" level of Unicode Technical Standard #39, section 5.2: a
// label's letters must come from one script, or from Latin with the Han,
// Hiragana and Katakana of Japanese, the Han and Bopomofo of Chinese, or
// the Han and Hangul of Korean. Digits, hyphens and combining marks belong
// to every script.
//
// It applies to addresses being registered (sign-up, a contact change, a
// new staff account), never to lookups, so an address accepted before this
// rule existed still logs in.
func CheckNewEmail(email string) error {
	_, domain, ok := strings.Cut(email, "@")
	if !ok {
		return invalidEmail("must contain an @")
	}
	for _, label := range strings.Split(domain, ".") {
		u := label
		if strings.HasPrefix(label, "xn--") {
			var err error
			if u, err = idna.Punycode.ToUnicode(label); err != nil {
				return invalidEmail("has an invalid domain")
			}
		}
		if !singleScript(u) {
			return invalidEmail("has a domain that mixes alphabets (such as Latin and Cyrillic letters); type it in one alphabet")
		}
	}
	return nil
}

// The scripts of UTS #39's "highly restrictive" combinations.
var scriptSets = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// singleScript reports whether the letters of label satisfy UTS #39's
// highly restrictive level (see CheckNewEmail).
func singleScript(label string) bool {
	seen := map[string]bool{}
	for _, r := range label {
		switch {
		case r < utf8.RuneSelf:
			if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
				seen["Latin"] = true
			}
		case unicode.In(r, unicode.Common, unicode.Inherited):
		default:
			seen[scriptOf(r)] = true
		}
	}
	if len(seen) <= 1 {
		return true
	}
	for _, set := range scriptSets {
		all := true
		for sc := range seen {
			if !slices.Contains(set, sc) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// scriptOf returns the Unicode script of r ("Unknown" for none).
func scriptOf(r rune) string {
	for name, tab := range unicode.Scripts {
		if unicode.Is(tab, r) {
			return name
		}
	}
	return "Unknown"
}
