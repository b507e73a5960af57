package transparency

import (
	"fmt"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
)

// Period is a half-year reporting period. Half is 1 (January to June) or 2
// (July to December). Reports are half-yearly only; quarters ("2026Q3") are
// deliberately not accepted, so that two reports never cover overlapping
// time and small quarterly counts are not published.
type Period struct {
	Year int
	Half int
}

// The years a Period may name.
const (
	minYear = 1970
	maxYear = 9999
)

// ParsePeriod parses the form "YYYYH1" or "YYYYH2", for example "2026H2".
// The year has exactly four digits and lies in 1970..9999; the H is upper
// case; no white space is allowed. Anything else returns an *errs.Error with
// code Invalid and field "period".
func ParsePeriod(s string) (Period, error) {
	bad := errs.Field(errs.Invalid, "period", "period %q is not of the form YYYYH1 or YYYYH2", truncate(s, 16))
	if len(s) != 6 || s[4] != 'H' {
		return Period{}, bad
	}
	y := 0
	for _, c := range []byte(s[:4]) {
		if c < '0' || c > '9' {
			return Period{}, bad
		}
		y = y*10 + int(c-'0')
	}
	var h int
	switch s[5] {
	case '1':
		h = 1
	case '2':
		h = 2
	default:
		return Period{}, bad
	}
	p := Period{Year: y, Half: h}
	if !p.Valid() {
		return Period{}, errs.Field(errs.Invalid, "period", "period year %d is outside %d..%d", y, minYear, maxYear)
	}
	return p, nil
}

// PeriodOf returns the period that contains t, taken in UTC.
func PeriodOf(t time.Time) Period {
	t = t.UTC()
	h := 1
	if t.Month() > time.June {
		h = 2
	}
	return Period{Year: t.Year(), Half: h}
}

// Valid reports whether p names a period ParsePeriod would accept.
func (p Period) Valid() bool {
	return p.Year >= minYear && p.Year <= maxYear && (p.Half == 1 || p.Half == 2)
}

// String returns p in the form ParsePeriod reads, e.g. "2026H2".
func (p Period) String() string { return fmt.Sprintf("%04dH%d", p.Year, p.Half) }

// Start returns the first instant of p: 1 January or 1 July, 00:00 UTC.
// The result is meaningless for an invalid p.
func (p Period) Start() time.Time {
	m := time.January
	if p.Half == 2 {
		m = time.July
	}
	return time.Date(p.Year, m, 1, 0, 0, 0, 0, time.UTC)
}

// End returns the first instant after p, which is the Start of the next
// period: a period covers the half-open interval [Start, End).
func (p Period) End() time.Time { return p.Next().Start() }

// Contains reports whether t lies in [p.Start(), p.End()).
func (p Period) Contains(t time.Time) bool {
	return !t.Before(p.Start()) && t.Before(p.End())
}

// Next returns the period that follows p.
func (p Period) Next() Period {
	if p.Half == 2 {
		return Period{Year: p.Year + 1, Half: 1}
	}
	return Period{Year: p.Year, Half: 2}
}

// truncate shortens untrusted input before it is quoted in an error.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
