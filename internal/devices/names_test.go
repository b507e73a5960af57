package devices

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFoldName(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"Laptop", "LAPTOP", true},
		{"Straße", "STRASSE", true},
		{"Ἀθῆναι", "ἈΘΗ͂ΝΑΙ", true},
		{"café", "cafe\u0301", true}, // composed and decomposed
		{"laptop", "laptop (2)", false},
		{"phone", "phone ", false},
	} {
		if got := FoldName(c.a) == FoldName(c.b); got != c.same {
			t.Errorf("FoldName(%q) == FoldName(%q): %v, want %v", c.a, c.b, got, c.same)
		}
	}
}

func TestNumbered(t *testing.T) {
	if got := numbered("laptop", 7); got != "laptop (7)" {
		t.Errorf("numbered: %q", got)
	}
	long := strings.Repeat("é", 64)
	got := numbered(long, 12)
	if utf8.RuneCountInString(got) != 64 || !strings.HasSuffix(got, "é (12)") {
		t.Errorf("numbered 64 characters: %q (%d), want 64 characters ending in (12)", got, utf8.RuneCountInString(got))
	}
	if _, err := ValidateName(got); err != nil {
		t.Errorf("numbered name is not valid: %v", err)
	}
}
