package password

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"github.com/trustelem/zxcvbn/match"
)

// MinScore is the least zxcvbn score a new password must reach. Score 3
// means zxcvbn estimates it takes at least 10^8 guesses: "safely
// unguessable", out of reach of online guessing (which the per-account
// slow-down also caps) and costly offline against argon2id.
const MinScore = 3

// maxScored bounds the characters zxcvbn looks at: its matching grows
// quickly with length (a 256-character password can take a second), and
// a password whose first 64 characters are hard to guess is hard to guess.
const maxScored = 64

// Verdict is the policy's judgement of a new password.
type Verdict struct {
	// Score is zxcvbn's score, 0 (too guessable) to 4 (very
	// unguessable); 0 also for a password outside the length limits.
	Score int `json:"score"`
	// Acceptable reports whether the password may be used: within the
	// length limits, valid text and Score >= MinScore.
	Acceptable bool `json:"acceptable"`
	// Feedback says, in sentences for people, what is wrong (first) and
	// how to do better; empty for a strong password. It never contains
	// the password or the context.
	Feedback []string `json:"feedback"`
}

// Check judges password as a new password: valid UTF-8 without NUL,
// MinLength to MaxLength characters (Unicode code points), and a zxcvbn
// score of at least MinScore, where zxcvbn also counts as easy to guess
// anything taken from context: pass the user's email address and mobile
// number (and a staff member's address), which are split into the words
// and digits a person would reuse. The portal's strength meter shows this
// verdict (the password-check API), so the page and the server agree.
//
// Check is safe for concurrent use. Its cost is bounded: only the first
// 64 characters are scored.
func Check(password string, context ...string) Verdict {
	bad := func(msg ...string) Verdict { return Verdict{Score: 0, Feedback: msg} }
	if !utf8.ValidString(password) {
		return bad("The password must be valid text.")
	}
	if strings.IndexByte(password, 0) >= 0 {
		return bad("The password must not contain a NUL character.")
	}
	n := utf8.RuneCountInString(password)
	if n < MinLength {
		return bad("Use at least " + itoa(MinLength) + " characters. A few unrelated words make a password that is long and easy to remember.")
	}
	if n > MaxLength {
		return bad("Use at most " + itoa(MaxLength) + " characters.")
	}
	scored := password
	if n > maxScored {
		scored = string([]rune(password)[:maxScored])
	}
	r := zxcvbn.PasswordStrength(scored, userInputs(context))
	v := Verdict{Score: r.Score, Acceptable: r.Score >= MinScore}
	if !v.Acceptable {
		v.Feedback = feedback(r.Sequence)
	}
	return v
}

// userInputs expands the context into zxcvbn's user inputs: each value,
// and the parts of an email address (local part, its words, the domain's
// labels but the last) and of a phone number (its digits, and its last 6
// to 10 digits) that a person might build a password from.
func userInputs(context []string) []string {
	var out []string
	add := func(s string) {
		if utf8.RuneCountInString(s) >= 3 {
			out = append(out, strings.ToLower(s))
		}
	}
	for _, c := range context {
		c = strings.TrimSpace(c)
		add(c)
		if local, domain, ok := strings.Cut(c, "@"); ok {
			add(local)
			for _, w := range strings.FieldsFunc(local, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
				add(w)
			}
			labels := strings.Split(domain, ".")
			for _, l := range labels[:len(labels)-1] {
				add(l)
			}
			continue
		}
		digits := strings.Map(func(r rune) rune {
			if '0' <= r && r <= '9' {
				return r
			}
			return -1
		}, c)
		if len(digits) >= 6 {
			add(digits)
			for k := 6; k <= 10 && k < len(digits); k++ {
				add(digits[len(digits)-k:])
			}
		}
	}
	return out
}

// feedback explains a weak password from zxcvbn's match sequence, after
// zxcvbn's own feedback (which the Go port lacks): a warning about the
// longest pattern found, then suggestions.
func feedback(seq []*match.Match) []string {
	out := []string{"This password is too easy to guess."}
	var longest *match.Match
	for _, m := range seq {
		if longest == nil || len(m.Token) > len(longest.Token) {
			longest = m
		}
	}
	if longest != nil {
		out = append(out, warning(longest, len(seq) == 1)...)
	}
	out = append(out, "Add another word or two; uncommon words are better.")
	return out
}

// warning returns what to say about match m (sole: the whole password is
// this one match).
func warning(m *match.Match, sole bool) []string {
	switch m.Pattern {
	case "dictionary":
		var w []string
		switch {
		case m.DictionaryName == "user_inputs":
			w = append(w, "It contains your email address or mobile number, or part of them.")
		case m.DictionaryName == "passwords" && sole && !m.L33t && !m.Reversed && m.Rank <= 100:
			w = append(w, "It is one of the most common passwords.")
		case m.DictionaryName == "passwords":
			w = append(w, "It is or contains a commonly used password.")
		case m.DictionaryName == "english_wikipedia" && sole:
			w = append(w, "A word by itself is easy to guess.")
		case strings.HasSuffix(m.DictionaryName, "names") || m.DictionaryName == "surnames":
			w = append(w, "Names and surnames are easy to guess.")
		default:
			w = append(w, "It is built from common words.")
		}
		if m.Reversed {
			w = append(w, "Reversed words are not much harder to guess.")
		}
		if m.L33t {
			w = append(w, "Predictable substitutions like \"@\" for \"a\" do not help much.")
		}
		if strings.ToLower(m.Token) != m.Token {
			w = append(w, "Capital letters do not help much.")
		}
		return w
	case "spatial":
		return []string{"Rows and patterns of keys on a keyboard are easy to guess."}
	case "repeat":
		return []string{"Repeated characters and words are easy to guess."}
	case "sequence":
		return []string{"Sequences like \"abc\" or \"6543\" are easy to guess."}
	case "regex":
		return []string{"Recent years are easy to guess."}
	case "date":
		return []string{"Dates are easy to guess, especially those that mean something to you."}
	}
	return nil
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}
