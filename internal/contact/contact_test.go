package contact

import (
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/errs"
)

func TestNormalizeEmail(t *testing.T) {
	good := []struct {
		name, in, want string
	}{
		{"plain", "alice@example.com", "alice@example.com"},
		{"trim and lowercase", "  Alice@Example.COM ", "alice@example.com"},
		{"tabs and newlines trimmed", "\tbob@example.org\r\n", "bob@example.org"},
		{"plus tag kept", "Bob+VPN@example.org", "bob+vpn@example.org"},
		{"dots in local part", "first.last@mail.example.co.uk", "first.last@mail.example.co.uk"},
		{"atext specials", "a!#$%&'*+-/=?^_`{|}~z@example.com", "a!#$%&'*+-/=?^_`{|}~z@example.com"},
		{"unicode domain to punycode", "user@Bücher.example", "user@xn--bcher-kva.example"},
		{"already punycode", "user@xn--bcher-kva.example", "user@xn--bcher-kva.example"},
		{"fullwidth domain mapped", "user@ＥＸＡＭＰＬＥ.com", "user@example.com"},
		{"ideographic full stop", "user@example。com", "user@example.com"},
		{"hyphen inside label", "u@my-host.example", "u@my-host.example"},
		{"numeric label not last", "u@123.example", "u@123.example"},
		{"max local part", strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64) + "@example.com"},
		{"max total length", strings.Repeat("a", 64) + "@" + longDomain(254-65), strings.Repeat("a", 64) + "@" + longDomain(254-65)},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalizeEmail(tc.in)
			if err != nil {
				t.Fatalf("NormalizeEmail(%q): got error %v, want %q", tc.in, err, tc.want)
			}
			if got != tc.want {
				t.Fatalf("NormalizeEmail(%q): got %q, want %q", tc.in, got, tc.want)
			}
		})
	}

	bad := []struct {
		name, in string
	}{
		{"empty", ""},
		{"blank", "   "},
		{"no at", "alice.example.com"},
		{"no local part", "@example.com"},
		{"no domain", "alice@"},
		{"two ats", "alice@bob@example.com"},
		{"display name", "Alice <alice@example.com>"},
		{"quoted display name", `"Alice" <alice@example.com>`},
		{"angle brackets only", "<alice@example.com>"},
		{"trailing comment", "alice@example.com (Alice)"},
		{"leading comment", "(Alice) alice@example.com"},
		{"quoted local part", `"alice smith"@example.com`},
		{"space in local part", "alice smith@example.com"},
		{"leading dot", ".alice@example.com"},
		{"trailing dot in local", "alice.@example.com"},
		{"double dot", "al..ice@example.com"},
		{"non-ascii local part", "jösé@example.com"},
		{"no dot in domain", "alice@localhost"},
		{"trailing dot in domain", "alice@example.com."},
		{"empty label", "alice@example..com"},
		{"leading hyphen label", "alice@-example.com"},
		{"trailing hyphen label", "alice@example-.com"},
		{"underscore in domain", "alice@ex_ample.com"},
		{"ip literal", "alice@[192.0.2.1]"},
		{"numeric tld", "alice@192.0.2.1"},
		{"comma list", "alice@example.com,bob@example.com"},
		{"nul byte", "alice\x00@example.com"},
		{"crlf injection", "alice@example.com\r\nBcc: eve@example.com"},
		{"local part too long", strings.Repeat("a", 65) + "@example.com"},
		{"label too long", "a@" + strings.Repeat("b", 64) + ".com"},
		{"total too long", strings.Repeat("a", 64) + "@" + longDomain(254-64)},
		{"huge input", strings.Repeat("a", 5000) + "@example.com"},
		{"invalid punycode", "alice@xn--a.example"},
		{"invalid utf8", "alice@ex\xffample.com"},
		{"replacement character", "alice@ex\ufffdample.com"},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			got, err := NormalizeEmail(tc.in)
			if err == nil {
				t.Fatalf("NormalizeEmail(%q): got %q, want error", tc.in, got)
			}
			if c := errs.CodeOf(err); c != errs.Invalid {
				t.Fatalf("NormalizeEmail(%q): got code %q, want %q", tc.in, c, errs.Invalid)
			}
			checkNoEcho(t, err, tc.in)
		})
	}
}

// longDomain returns a valid domain of exactly n bytes (n >= 5) ending in
// ".com", made of labels of at most 63 bytes.
func longDomain(n int) string {
	var b strings.Builder
	rest := n - len(".com")
	for rest > 0 {
		if b.Len() > 0 {
			b.WriteByte('.')
			rest--
		}
		l := min(rest, 63)
		if rest-l == 1 { // never leave room only for a lone dot
			l--
		}
		b.WriteString(strings.Repeat("d", l))
		rest -= l
	}
	b.WriteString(".com")
	return b.String()
}

func TestLongDomainHelper(t *testing.T) {
	for _, n := range []int{5, 68, 69, 189, 190, 253} {
		d := longDomain(n)
		if len(d) != n {
			t.Fatalf("longDomain(%d): got length %d, want %d", n, len(d), n)
		}
		if _, err := NormalizeEmail("a@" + d); err != nil && n <= 253-2 {
			t.Fatalf("longDomain(%d) = %q: got error %v, want a valid domain", n, d, err)
		}
	}
}

func TestNormalizeMobile(t *testing.T) {
	good := []struct {
		name, in, region, want string
	}{
		{"GB mobile international", "+44 7911 123456", "", "+447911123456"},
		{"GB mobile international with region", "+44 7911 123456", "GB", "+447911123456"},
		{"GB mobile national", "07911 123456", "GB", "+447911123456"},
		{"GB mobile national lowercase region", "07911-123-456", "gb", "+447911123456"},
		{"GB mobile with brackets", "+44 (0)7911 123456", "", "+447911123456"},
		{"DE mobile", "+49 1512 3456789", "", "+4915123456789"},
		{"FR mobile national", "06 12 34 56 78", "FR", "+33612345678"},
		{"US fixed line or mobile", "(202) 555-0123", "US", "+12025550123"},
		{"US dotted", "+1.415.555.2671", "", "+14155552671"},
		{"already E.164", "+447911123456", "", "+447911123456"},
		{"surrounding space", "  +447911123456\n", "", "+447911123456"},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalizeMobile(tc.in, tc.region)
			if err != nil {
				t.Fatalf("NormalizeMobile(%q, %q): got error %v, want %q", tc.in, tc.region, err, tc.want)
			}
			if got != tc.want {
				t.Fatalf("NormalizeMobile(%q, %q): got %q, want %q", tc.in, tc.region, got, tc.want)
			}
		})
	}

	bad := []struct {
		name, in, region string
	}{
		{"empty", "", "GB"},
		{"garbage", "not a number", "GB"},
		{"punctuation only", "+-() ", "GB"},
		{"GB landline", "+44 20 7946 0018", ""},
		{"GB landline national", "020 7946 0018", "GB"},
		// Ofcom reserves 07700 900000-900999 for drama; libphonenumber
		// (correctly) does not treat it as a valid number.
		{"GB drama range", "+44 7700 900123", ""},
		{"national form without region", "07911 123456", ""},
		{"too short", "+44 7911", ""},
		{"too long", "+44 7911 123456 789012", ""},
		{"unknown country code", "+999 1234 5678", ""},
		{"vanity letters", "+1 800 FLOWERS", ""},
		{"extension", "+44 7911 123456 ext. 12", ""},
		{"extension hash", "+44 7911 123456#12", ""},
		{"tel uri", "tel:+44-7911-123456", ""},
		{"plus in middle", "44+7911123456", "GB"},
		{"double plus", "++447911123456", ""},
		{"huge input", "+44" + strings.Repeat("1", 1000), ""},
		{"email", "alice@example.com", "GB"},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			got, err := NormalizeMobile(tc.in, tc.region)
			if err == nil {
				t.Fatalf("NormalizeMobile(%q, %q): got %q, want error", tc.in, tc.region, got)
			}
			if c := errs.CodeOf(err); c != errs.Invalid {
				t.Fatalf("NormalizeMobile(%q, %q): got code %q, want %q", tc.in, tc.region, c, errs.Invalid)
			}
			checkNoEcho(t, err, tc.in)
		})
	}
}

func TestNormalizeMobileBadRegion(t *testing.T) {
	for _, region := range []string{"XX", "ZZ", "GBR", "1"} {
		t.Run(region, func(t *testing.T) {
			_, err := NormalizeMobile("+447911123456", region)
			if err == nil {
				t.Fatalf("NormalizeMobile with region %q: got nil error, want one", region)
			}
			if c := errs.CodeOf(err); c != errs.Internal {
				t.Fatalf("NormalizeMobile with region %q: got code %q, want %q", region, c, errs.Internal)
			}
		})
	}
}

// checkNoEcho fails if err's text repeats the (non-trivial) input, which
// would put personal data into logs and responses.
func checkNoEcho(t *testing.T, err error, in string) {
	t.Helper()
	in = strings.TrimSpace(in)
	if len(in) < 4 {
		return
	}
	if strings.Contains(err.Error(), in) {
		t.Fatalf("error %q contains the input %q, want no personal data in errors", err, in)
	}
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", "  Alice@Example.COM ", "user@Bücher.example",
		"Alice <alice@example.com>", "a@b", "a@xn--bcher-kva.example",
		"user@ＥＸＡＭＰＬＥ.com", "\"q\"@example.com", "a@[127.0.0.1]", "a@ß.de",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeEmail(s)
		if err != nil {
			if c := errs.CodeOf(err); c != errs.Invalid {
				t.Fatalf("NormalizeEmail(%q): got code %q, want %q", s, c, errs.Invalid)
			}
			return
		}
		if len(got) > maxEmailLen {
			t.Fatalf("NormalizeEmail(%q) = %q: got length %d, want <= %d", s, got, len(got), maxEmailLen)
		}
		again, err := NormalizeEmail(got)
		if err != nil {
			t.Fatalf("NormalizeEmail(%q) = %q, which does not normalise: %v", s, got, err)
		}
		if again != got {
			t.Fatalf("NormalizeEmail(NormalizeEmail(%q)): got %q, want %q", s, again, got)
		}
	})
}

func FuzzNormalizeMobile(f *testing.F) {
	for _, s := range []struct{ s, r string }{
		{"+44 7911 123456", ""}, {"07911 123456", "GB"}, {"(202) 555-0123", "US"},
		{"+44 20 7946 0018", "GB"}, {"06 12 34 56 78", "FR"}, {"+1 800 FLOWERS", ""},
		{"", ""}, {"+", "DE"}, {"00 44 7911 123456", "FR"},
	} {
		f.Add(s.s, s.r)
	}
	f.Fuzz(func(t *testing.T, s, region string) {
		got, err := NormalizeMobile(s, region)
		if err != nil {
			return
		}
		if !strings.HasPrefix(got, "+") {
			t.Fatalf("NormalizeMobile(%q, %q) = %q: want a leading +", s, region, got)
		}
		// E.164 output must normalise to itself with or without a region.
		for _, r := range []string{region, ""} {
			again, err := NormalizeMobile(got, r)
			if err != nil {
				t.Fatalf("NormalizeMobile(%q, %q) = %q, which does not normalise with region %q: %v", s, region, got, r, err)
			}
			if again != got {
				t.Fatalf("NormalizeMobile(%q, %q): got %q, want %q", got, r, again, got)
			}
		}
	})
}
