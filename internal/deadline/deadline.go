// Package deadline computes the response deadlines of data-subject requests
// under GDPR Art. 12(3): one calendar month from receipt, extendable by at
// most two further months when the request is complex or numerous, provided
// the data subject is told, with reasons, within the first month.
//
// All functions are pure: the current time is always passed in, and nothing
// is read from the system clock. They are safe for concurrent use.
//
// # Calendar months
//
// A deadline "n months after" a receipt date falls on the same day of the
// month, n calendar months later. When the target month is shorter, the
// deadline is clamped to its last day: 31 January + 1 month is 28 February
// (29 February in a leap year), 31 March + 1 month is 30 April. This differs
// from [time.Time.AddDate], which normalises 31 January + 1 month to 3 March
// (or 2 March) and would silently extend or shorten the period.
//
// The deadline keeps the wall-clock time of day of the receipt, in the
// receipt's location. So a request received at 14:05 Europe/Berlin on
// 10 March is due at 14:05 Europe/Berlin on 10 April, even though a DST
// change lies in between. Callers choose the location by the location of the
// received time they pass; for times read back from the store (UTC, whole
// seconds) that is UTC. If the wall-clock time does not exist on the due day
// (a DST gap), the result is normalised as [time.Date] documents.
package deadline

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nitronet/nitronet/internal/errs"
)

const (
	// Months is the ordinary response period, in calendar months.
	Months = 1
	// MaxExtraMonths is the most the period may be extended by, in total.
	MaxExtraMonths = 2
	// MaxReasonLen is the longest extension reason accepted, in bytes
	// after trimming surrounding white space.
	MaxReasonLen = 1000
	// matchTolerance is how far currentDue may lie from a computed due
	// date and still be recognised as that date in Extend. It absorbs
	// storage precision and a location differing from the one the due date
	// was first computed in; computed due dates are at least 28 days apart.
	matchTolerance = 3 * 24 * time.Hour
)

// Due returns the deadline that is months calendar months after received:
// the same day of the month, clamped to the last day of the target month,
// at received's wall-clock time of day, in received's location.
//
// Due(received, 0) returns received unchanged; a negative months is treated
// as 0. For months >= 1 the result is always after received and less than
// 31*months+1 days later (a DST change in between moves it by the offset
// change, an hour in most zones).
func Due(received time.Time, months int) time.Time {
	if months <= 0 {
		return received
	}
	y, m, d := received.Date()
	hh, mm, ss := received.Clock()
	loc := received.Location()
	target := m + time.Month(months)
	// Day 0 of the following month is the last day of the target month;
	// time.Date normalises month overflow into the year.
	last := time.Date(y, target+1, 0, 12, 0, 0, 0, time.UTC).Day()
	if d > last {
		d = last
	}
	return time.Date(y, target, d, hh, mm, ss, received.Nanosecond(), loc)
}

// Extend returns a new due date for a request received at received whose
// current due date is currentDue, extended by extraMonths further calendar
// months, with reason recorded by the caller and sent to the data subject.
//
// The new due date is computed from received (not from currentDue), so
// clamping at month ends never accumulates: a request received on 31 January
// and extended twice by one month is due on 31 March.
//
// Extend returns an *errs.Error with code Invalid when extraMonths < 1, when
// reason is empty or longer than MaxReasonLen bytes after trimming, or not
// valid UTF-8, when currentDue is not a due date of received (one, two or
// three months after it), or when the total extension would exceed
// MaxExtraMonths. It returns code Conflict when now is after the original
// one-month due date: Art. 12(3) requires the extension to be notified within
// the first month, so the request's age conflicts with the extension. Sending
// that notice is the caller's job; Extend only decides whether the extension
// is allowed. Errors about the number of months name the field "months",
// errors about the reason the field "reason".
func Extend(received, now time.Time, currentDue time.Time, extraMonths int, reason string) (time.Time, error) {
	if extraMonths < 1 {
		return time.Time{}, errs.Field(errs.Invalid, "months", "extension must be at least 1 month, got %d", extraMonths)
	}
	if extraMonths > MaxExtraMonths {
		return time.Time{}, errs.Field(errs.Invalid, "months", "extension may be at most %d further months, got %d", MaxExtraMonths, extraMonths)
	}
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return time.Time{}, errs.Field(errs.Invalid, "reason", "an extension needs a reason")
	case len(reason) > MaxReasonLen:
		return time.Time{}, errs.Field(errs.Invalid, "reason", "extension reason is longer than %d bytes", MaxReasonLen)
	case !utf8.ValidString(reason):
		return time.Time{}, errs.Field(errs.Invalid, "reason", "extension reason is not valid UTF-8")
	}

	current, err := extended(received, now, currentDue)
	if err != nil {
		return time.Time{}, err
	}
	already := current - Months
	if already+extraMonths > MaxExtraMonths {
		return time.Time{}, errs.Field(errs.Invalid, "months",
			"extension may total at most %d further months; already extended by %d, asked for %d more",
			MaxExtraMonths, already, extraMonths)
	}
	return Due(received, current+extraMonths), nil
}

// extended returns how many months after received currentDue lies (Months
// for a request not extended yet), or Conflict when now is past the first
// month, or Invalid when currentDue is no due date of received.
func extended(received, now, currentDue time.Time) (int, error) {
	original := Due(received, Months)
	if now.After(original) {
		return 0, errs.E(errs.Conflict,
			"too late to extend: an extension must be notified within the first month, which ended %s",
			original.UTC().Format(time.RFC3339))
	}
	for k := Months; k <= Months+MaxExtraMonths; k++ {
		if absDur(currentDue.Sub(Due(received, k))) <= matchTolerance {
			return k, nil
		}
	}
	return 0, errs.E(errs.Invalid, "current due date is not %d to %d months after receipt",
		Months, Months+MaxExtraMonths)
}

// Extensions returns the numbers of further months by which a request
// received at received and now due at currentDue may still be extended at
// now, smallest first: exactly the extraMonths for which Extend (given a
// reason) succeeds. It returns no months and the error Extend would give
// when none is possible: Conflict once the first month has passed,
// Invalid when the total extension is used up or currentDue is no due
// date of received.
func Extensions(received, now, currentDue time.Time) ([]int, error) {
	current, err := extended(received, now, currentDue)
	if err != nil {
		return nil, err
	}
	already := current - Months
	if already >= MaxExtraMonths {
		return nil, errs.Field(errs.Invalid, "months", "extension may total at most %d further months; already extended by %d",
			MaxExtraMonths, already)
	}
	var out []int
	for m := 1; already+m <= MaxExtraMonths; m++ {
		out = append(out, m)
	}
	return out, nil
}

// Overdue reports whether a request due at due and not yet answered is past
// its deadline at now. A request is not overdue at the due instant itself.
func Overdue(due, now time.Time, answered bool) bool {
	return !answered && now.After(due)
}

// DueWithin reports whether due falls within the window [now, now+d]: the
// deadline has not passed yet but will within d. It is false for a negative
// d and for a deadline already passed (see Overdue).
func DueWithin(due, now time.Time, d time.Duration) bool {
	if d < 0 || now.After(due) {
		return false
	}
	return !due.After(now.Add(d))
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
