package contact

import (
	"strings"
	"testing"
	"unicode"

	"github.com/nitronet/nitronet/internal/errs"
)

// TestCanonicalEmailVariants: every spelling of bob@example.com that only
// differs in width, case, white space or IDNA form has the one canonical
// form; look-alikes that are other addresses (a dotless ı, a Cyrillic а)
// keep their own form, and letters that are not ASCII in the local part are
// refused rather than folded. Rate-limit keys, blind indexes and the
// uniqueness of accounts all key on this form (tests in httpedge and
// server check that they do).
func TestCanonicalEmailVariants(t *testing.T) {
	const bob = "bob@example.com"
	same := map[string]string{
		"plain":                      "bob@example.com",
		"upper case":                 "BOB@EXAMPLE.COM",
		"full-width e in the domain": "bob@\uff45xample.com",
		"full-width local part":      "\uff42\uff4f\uff42@example.com",
		"full-width at sign":         "bob\uff20example.com",
		"full-width dot":             "bob@example\uff0ecom",
		"ideographic full stop":      "bob@example\u3002com",
		"all full-width":             "\uff22\uff2f\uff22\uff20\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25\uff0e\uff23\uff2f\uff2d",
		"ideographic space around":   "\u3000bob@example.com\u3000",
		"small commercial at":        "bob\ufe6bexample.com",
	}
	for name, in := range same {
		t.Run("same/"+name, func(t *testing.T) {
			got, err := NormalizeEmail(in)
			if err != nil || got != bob {
				t.Fatalf("NormalizeEmail(%q): got %q, %v; want %q", in, got, err, bob)
			}
		})
	}
	// IDNA: the Unicode and punycode spellings of one domain are one.
	for _, in := range []string{"bob@bücher.example", "bob@BÜCHER.example", "bob@bu\u0308cher.example", "bob@xn--bcher-kva.example", "bob@XN--BCHER-KVA.example", "bob@b\uff55\u0308cher.example"} {
		got, err := NormalizeEmail(in)
		if err != nil || got != "bob@xn--bcher-kva.example" {
			t.Errorf("NormalizeEmail(%q): got %q, %v; want bob@xn--bcher-kva.example", in, got, err)
		}
	}
	// The Kelvin sign and the long s are compatibility spellings of K and
	// s, so they fold; Go's strings.ToLower would fold them too, but it
	// would also turn the Turkish İ into i, which NFKC does not.
	for in, want := range map[string]string{"\u212aate@example.com": "kate@example.com", "bo\u017f@example.com": "bos@example.com"} {
		if got, err := NormalizeEmail(in); err != nil || got != want {
			t.Errorf("NormalizeEmail(%q): got %q, %v; want %q", in, got, err, want)
		}
	}
	distinct := map[string]string{
		"dotless i in the domain":    "bob@exampıe.com",
		"Turkish dotted I in domain": "bob@exampİe.com",
		"Cyrillic a in the domain":   "bob@ex\u0430mple.com",
		"Greek omicron in domain":    "bob@example.c\u03bfm",
	}
	for name, in := range distinct {
		t.Run("distinct/"+name, func(t *testing.T) {
			got, err := NormalizeEmail(in)
			if err != nil {
				t.Fatalf("NormalizeEmail(%q): got error %v, want a canonical form of its own", in, err)
			}
			if got == bob || !strings.Contains(got, "xn--") {
				t.Fatalf("NormalizeEmail(%q): got %q, want a punycode domain other than example.com", in, got)
			}
		})
	}
	refused := map[string]string{
		"Turkish dotted I in local": "b\u0130b@example.com",
		"dotless i in local":        "b\u0131b@example.com",
		"Cyrillic o in local":       "b\u043eb@example.com",
		"combining dot in local":    "bi\u0307b@example.com",
	}
	for name, in := range refused {
		t.Run("refused/"+name, func(t *testing.T) {
			if got, err := NormalizeEmail(in); !errs.Is(err, errs.Invalid) {
				t.Fatalf("NormalizeEmail(%q): got %q, %v; want Invalid", in, got, err)
			}
		})
	}
}

func TestCheckNewEmail(t *testing.T) {
	ok := []string{
		"bob@example.com", "bob@xn--bcher-kva.example", "bob@exampıe.com",
		"bob@россия.example",      // all Cyrillic
		"bob@日本語ドメイン.example",     // Han + Katakana (Japanese)
		"bob@abc日本.example",       // Latin + Han
		"bob@한국abc.example",       // Hangul + Latin
		"bob@ελλάδα-2024.example", // Greek with digits and a hyphen
	}
	for _, in := range ok {
		c, err := NormalizeEmail(in)
		if err != nil {
			t.Fatalf("NormalizeEmail(%q): %v", in, err)
		}
		if err := CheckNewEmail(c); err != nil {
			t.Errorf("CheckNewEmail(%q): got %v, want nil", in, err)
		}
	}
	bad := []string{
		"bob@ex\u0430mple.com",     // Latin + Cyrillic
		"bob@example.c\u03bfm",     // Latin + Greek
		"bob@\u0440\u0430ypal.com", // Cyrillic р а + Latin
		"bob@한국ひらがな.example",       // Hangul + Hiragana
	}
	for _, in := range bad {
		c, err := NormalizeEmail(in)
		if err != nil {
			t.Fatalf("NormalizeEmail(%q): %v", in, err)
		}
		err = CheckNewEmail(c)
		if !errs.Is(err, errs.Invalid) || errs.FieldOf(err) != "email" {
			t.Errorf("CheckNewEmail(%q): got %v, want Invalid with field email", in, err)
		}
	}
}

func TestCanonicalMobileVariants(t *testing.T) {
	const want = "+447911123456"
	for name, in := range map[string]string{
		"ASCII":                  "+44 7911 123456",
		"full-width":             "\uff0b\uff14\uff14\u3000\uff17\uff19\uff11\uff11\u3000\uff11\uff12\uff13\uff14\uff15\uff16",
		"Arabic-Indic digits":    "+\u0664\u0664\u0667\u0669\u0661\u0661\u0661\u0662\u0663\u0664\u0665\u0666",
		"Persian digits":         "+\u06f4\u06f4\u06f7\u06f9\u06f1\u06f1\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6",
		"Devanagari digits":      "+\u096a\u096a \u096d\u096f\u0967\u0967 \u0967\u0968\u0969\u096a\u096b\u096c",
		"mathematical digits":    "+\U0001d7d2\U0001d7d2\U0001d7d5\U0001d7d7\U0001d7cf\U0001d7cf\U0001d7cf\U0001d7d0\U0001d7d1\U0001d7d2\U0001d7d3\U0001d7d4",
		"full-width hyphens":     "+44\uff0d7911\uff0d123456",
		"surrounding full-width": "\u3000+447911123456\u3000",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := NormalizeMobile(in, "")
			if err != nil || got != want {
				t.Fatalf("NormalizeMobile(%q): got %q, %v; want %q", in, got, err, want)
			}
		})
	}
	for name, in := range map[string]string{
		"superscript digits": "+\u2074\u2074 7911 123456", // NFKC makes them digits: still one number
	} {
		if got, err := NormalizeMobile(in, ""); err != nil || got != want {
			t.Errorf("%s: NormalizeMobile(%q): got %q, %v; want %q", name, in, got, err, want)
		}
	}
}

// TestDigitRuns checks what foldDigits relies on: Unicode's decimal digits
// come in runs of ten, zero first.
func TestDigitRuns(t *testing.T) {
	for _, rg := range unicode.Nd.R16 {
		if rg.Stride != 1 || (int(rg.Hi)-int(rg.Lo)+1)%10 != 0 {
			t.Errorf("Nd range %#x-%#x stride %d: want runs of ten", rg.Lo, rg.Hi, rg.Stride)
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if rg.Stride != 1 || (int(rg.Hi)-int(rg.Lo)+1)%10 != 0 {
			t.Errorf("Nd range %#x-%#x stride %d: want runs of ten", rg.Lo, rg.Hi, rg.Stride)
		}
	}
}

// TestCanonicalFormKeepsIndexes: every address and number the previous
// normalisers accepted normalises to the same string now, so blind indexes
// stored before the canonical form folded width need no re-indexing.
func TestCanonicalFormKeepsIndexes(t *testing.T) {
	emails := []string{
		"alice@example.com", "  Alice@Example.COM ", "user@Bücher.example", "a@xn--bcher-kva.example",
		"user@ＥＸＡＭＰＬＥ.com", "user@example。com", "a@ß.de", "Bob+VPN@example.org",
		"a!#$%&'*+-/=?^_`{|}~z@example.com", "u@123.example", "x@ex\u0430mple.com", "x@ﬁsh.example",
		"x@①.example", "x@ｘｎ--bcher-kva.example", "x@\u2126.example",
	}
	for _, s := range emails {
		checkSameEmail(t, s)
	}
	mobiles := [][2]string{{"+44 7911 123456", ""}, {"07911 123456", "GB"}, {"(202) 555-0123", "US"}, {"06 12 34 56 78", "FR"}}
	for _, m := range mobiles {
		checkSameMobile(t, m[0], m[1])
	}
}

func checkSameEmail(t *testing.T, s string) {
	t.Helper()
	old, err := legacyNormalizeEmail(s)
	if err != nil {
		return
	}
	got, err := NormalizeEmail(s)
	if err != nil || got != old {
		t.Fatalf("NormalizeEmail(%q): got %q, %v; the previous version gave %q", s, got, err, old)
	}
	if again, err := NormalizeEmail(old); err != nil || again != old {
		t.Fatalf("NormalizeEmail(%q), a stored canonical form: got %q, %v; want it unchanged", old, again, err)
	}
}

func checkSameMobile(t *testing.T, s, region string) {
	t.Helper()
	old, err := legacyNormalizeMobile(s, region)
	if err != nil {
		return
	}
	got, err := NormalizeMobile(s, region)
	if err != nil || got != old {
		t.Fatalf("NormalizeMobile(%q, %q): got %q, %v; the previous version gave %q", s, region, got, err, old)
	}
}

func FuzzCanonicalFormKeepsIndexes(f *testing.F) {
	for _, s := range []string{"alice@example.com", "user@Bücher.example", "a@ß.de", "x@ﬁsh.example", "+44 7911 123456"} {
		f.Add(s, "GB")
	}
	f.Fuzz(func(t *testing.T, s, region string) {
		checkSameEmail(t, s)
		checkSameMobile(t, s, region)
	})
}
