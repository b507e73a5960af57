package deadline

import (
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // hermetic zone data for the DST cases

	"github.com/nitronet/nitronet/internal/errs"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func date(y int, m time.Month, d, hh, mm int, loc *time.Location) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, loc)
}

func TestDue(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	ny := mustLoc(t, "America/New_York")
	utc := time.UTC
	tests := []struct {
		name     string
		received time.Time
		months   int
		want     time.Time
	}{
		{"mid month", date(2026, 5, 15, 10, 30, utc), 1, date(2026, 6, 15, 10, 30, utc)},
		{"jan 31 non-leap", date(2026, 1, 31, 9, 0, utc), 1, date(2026, 2, 28, 9, 0, utc)},
		{"jan 31 leap", date(2028, 1, 31, 9, 0, utc), 1, date(2028, 2, 29, 9, 0, utc)},
		{"jan 30 leap", date(2024, 1, 30, 9, 0, utc), 1, date(2024, 2, 29, 9, 0, utc)},
		{"jan 29 non-leap", date(2025, 1, 29, 9, 0, utc), 1, date(2025, 2, 28, 9, 0, utc)},
		{"feb 28 non-leap", date(2026, 2, 28, 9, 0, utc), 1, date(2026, 3, 28, 9, 0, utc)},
		{"feb 29 leap", date(2028, 2, 29, 9, 0, utc), 1, date(2028, 3, 29, 9, 0, utc)},
		{"feb 29 plus 12", date(2028, 2, 29, 9, 0, utc), 12, date(2029, 2, 28, 9, 0, utc)},
		{"mar 31", date(2026, 3, 31, 23, 59, utc), 1, date(2026, 4, 30, 23, 59, utc)},
		{"may 31", date(2026, 5, 31, 0, 0, utc), 1, date(2026, 6, 30, 0, 0, utc)},
		{"aug 31", date(2026, 8, 31, 0, 0, utc), 1, date(2026, 9, 30, 0, 0, utc)},
		{"jan 31 plus 2", date(2026, 1, 31, 9, 0, utc), 2, date(2026, 3, 31, 9, 0, utc)},
		{"jan 31 plus 3", date(2026, 1, 31, 9, 0, utc), 3, date(2026, 4, 30, 9, 0, utc)},
		{"dec to jan", date(2026, 12, 15, 8, 0, utc), 1, date(2027, 1, 15, 8, 0, utc)},
		{"dec 31 to jan", date(2026, 12, 31, 8, 0, utc), 1, date(2027, 1, 31, 8, 0, utc)},
		{"nov 30 plus 3", date(2026, 11, 30, 8, 0, utc), 3, date(2027, 2, 28, 8, 0, utc)},
		{"dec 31 plus 2 leap", date(2027, 12, 31, 8, 0, utc), 2, date(2028, 2, 29, 8, 0, utc)},
		{"oct 31 plus 4", date(2026, 10, 31, 8, 0, utc), 4, date(2027, 2, 28, 8, 0, utc)},
		{"zero months", date(2026, 5, 15, 10, 30, utc), 0, date(2026, 5, 15, 10, 30, utc)},
		{"negative months", date(2026, 5, 15, 10, 30, utc), -3, date(2026, 5, 15, 10, 30, utc)},
		// Across DST: the wall-clock time is kept, so the elapsed time
		// differs from whole days by the offset change.
		{"berlin spring forward", date(2026, 3, 10, 14, 5, berlin), 1, date(2026, 4, 10, 14, 5, berlin)},
		{"berlin fall back", date(2026, 10, 15, 14, 5, berlin), 1, date(2026, 11, 15, 14, 5, berlin)},
		{"berlin month end near dst", date(2026, 3, 31, 1, 30, berlin), 1, date(2026, 4, 30, 1, 30, berlin)},
		{"new york jan 31", date(2026, 1, 31, 23, 30, ny), 1, date(2026, 2, 28, 23, 30, ny)},
		{"nanoseconds kept", time.Date(2026, 1, 31, 9, 0, 1, 5, utc), 1, time.Date(2026, 2, 28, 9, 0, 1, 5, utc)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Due(tt.received, tt.months)
			if !got.Equal(tt.want) {
				t.Errorf("Due(%v, %d) = %v, want %v", tt.received, tt.months, got, tt.want)
			}
			if got.Location() != tt.received.Location() {
				t.Errorf("Due location = %v, want %v", got.Location(), tt.received.Location())
			}
		})
	}
}

func TestDueNotAddDate(t *testing.T) {
	received := date(2026, 1, 31, 12, 0, time.UTC)
	naive := received.AddDate(0, 1, 0)
	if got := Due(received, 1); got.Equal(naive) {
		t.Errorf("Due(%v, 1) = %v, the same as AddDate; want clamping to 28 February", received, got)
	}
}

func TestDueDSTGap(t *testing.T) {
	// 02:30 does not exist in Berlin on 29 March 2026 (clocks jump from
	// 02:00 to 03:00). The result must still be on that day, after receipt.
	berlin := mustLoc(t, "Europe/Berlin")
	received := date(2026, 1, 29, 2, 30, berlin)
	got := Due(received, 2)
	y, m, d := got.Date()
	if y != 2026 || m != time.March || d != 29 {
		t.Errorf("Due(%v, 2) = %v, want a time on 2026-03-29", received, got)
	}
}

func TestDueSkippedDay(t *testing.T) {
	// Samoa skipped 30 December 2011. The deadline moves to the next
	// existing day, and the elapsed time is still a month or less.
	apia := mustLoc(t, "Pacific/Apia")
	received := date(2011, 11, 30, 12, 0, apia)
	got := Due(received, 1)
	want := date(2011, 12, 31, 12, 0, apia)
	if !got.Equal(want) {
		t.Errorf("Due(%v, 1) = %v, want %v", received, got, want)
	}
	if el := got.Sub(received); el > 31*24*time.Hour {
		t.Errorf("elapsed %v, want at most 31 days", el)
	}
}

func TestExtend(t *testing.T) {
	utc := time.UTC
	received := date(2026, 1, 31, 9, 0, utc)
	first := Due(received, 1) // 2026-02-28 09:00
	second := Due(received, 2)
	third := Due(received, 3)
	inFirstMonth := date(2026, 2, 10, 12, 0, utc)
	tests := []struct {
		name       string
		now        time.Time
		currentDue time.Time
		extra      int
		reason     string
		want       time.Time
		wantCode   errs.Code
	}{
		{"one month", inFirstMonth, first, 1, "complex request", second, ""},
		{"two months", inFirstMonth, first, 2, "many requests", third, ""},
		{"second extension", inFirstMonth, second, 1, "still complex", third, ""},
		{"at original due instant", first, first, 1, "complex", second, ""},
		{"current due from storage in another zone", inFirstMonth, first.In(mustLoc(t, "Asia/Tokyo")), 1, "complex", second, ""},
		{"current due truncated", inFirstMonth, first.Add(-400 * time.Millisecond), 1, "complex", second, ""},
		{"reason trimmed", inFirstMonth, first, 1, "  complex \n", second, ""},
		{"zero months", inFirstMonth, first, 0, "complex", time.Time{}, errs.Invalid},
		{"negative months", inFirstMonth, first, -1, "complex", time.Time{}, errs.Invalid},
		{"three months", inFirstMonth, first, 3, "complex", time.Time{}, errs.Invalid},
		{"total over two", inFirstMonth, second, 2, "complex", time.Time{}, errs.Invalid},
		{"already at maximum", inFirstMonth, third, 1, "complex", time.Time{}, errs.Invalid},
		{"empty reason", inFirstMonth, first, 1, "", time.Time{}, errs.Invalid},
		{"blank reason", inFirstMonth, first, 1, " \t\n ", time.Time{}, errs.Invalid},
		{"reason too long", inFirstMonth, first, 1, strings.Repeat("x", MaxReasonLen+1), time.Time{}, errs.Invalid},
		{"reason at limit", inFirstMonth, first, 1, strings.Repeat("x", MaxReasonLen), second, ""},
		{"reason bad utf8", inFirstMonth, first, 1, "bad \xff", time.Time{}, errs.Invalid},
		{"unrelated current due", inFirstMonth, date(2026, 2, 14, 0, 0, utc), 1, "complex", time.Time{}, errs.Invalid},
		{"too late", first.Add(time.Second), first, 1, "complex", time.Time{}, errs.Conflict},
		{"too late even if extended", date(2026, 3, 5, 0, 0, utc), second, 1, "complex", time.Time{}, errs.Conflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Extend(received, tt.now, tt.currentDue, tt.extra, tt.reason)
			if code := errs.CodeOf(err); code != tt.wantCode {
				t.Fatalf("Extend error = %v (code %q), want code %q", err, code, tt.wantCode)
			}
			if err != nil {
				if msg := errs.MessageOf(err); msg == "" || msg == "internal error" {
					t.Errorf("Extend message = %q, want a descriptive message", msg)
				}
				return
			}
			if !got.Equal(tt.want) {
				t.Errorf("Extend = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestExtendNoDrift(t *testing.T) {
	// Extending one month at a time must land on the same date as
	// extending by two at once, despite the 28 February clamp.
	received := date(2026, 1, 31, 9, 0, time.UTC)
	now := date(2026, 2, 1, 0, 0, time.UTC)
	d1, err := Extend(received, now, Due(received, 1), 1, "complex")
	if err != nil {
		t.Fatalf("first Extend: %v", err)
	}
	d2, err := Extend(received, now, d1, 1, "more complex")
	if err != nil {
		t.Fatalf("second Extend: %v", err)
	}
	want := date(2026, 4, 30, 9, 0, time.UTC)
	if !d2.Equal(want) {
		t.Errorf("twice-extended due = %v, want %v", d2, want)
	}
}

func TestOverdue(t *testing.T) {
	due := date(2026, 2, 28, 9, 0, time.UTC)
	tests := []struct {
		name     string
		now      time.Time
		answered bool
		want     bool
	}{
		{"before", due.Add(-time.Hour), false, false},
		{"at due", due, false, false},
		{"after", due.Add(time.Second), false, true},
		{"after but answered", due.Add(time.Hour), true, false},
		{"before and answered", due.Add(-time.Hour), true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Overdue(due, tt.now, tt.answered); got != tt.want {
				t.Errorf("Overdue(%v, %v, %v) = %v, want %v", due, tt.now, tt.answered, got, tt.want)
			}
		})
	}
}

func TestDueWithin(t *testing.T) {
	due := date(2026, 2, 28, 9, 0, time.UTC)
	week := 7 * 24 * time.Hour
	tests := []struct {
		name string
		now  time.Time
		d    time.Duration
		want bool
	}{
		{"far ahead", due.Add(-30 * 24 * time.Hour), week, false},
		{"exactly d ahead", due.Add(-week), week, true},
		{"inside window", due.Add(-time.Hour), week, true},
		{"at due", due, week, true},
		{"zero window at due", due, 0, true},
		{"passed", due.Add(time.Second), week, false},
		{"negative window", due.Add(-time.Hour), -week, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DueWithin(due, tt.now, tt.d); got != tt.want {
				t.Errorf("DueWithin(%v, %v, %v) = %v, want %v", due, tt.now, tt.d, got, tt.want)
			}
		})
	}
}

func FuzzDue(f *testing.F) {
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia", "Asia/Kolkata"}
	locs := make([]*time.Location, len(zones))
	for i, z := range zones {
		locs[i] = mustLoc(f, z)
	}
	f.Add(int64(1769850000), int64(0), 1, uint8(0))
	f.Add(int64(1709164800), int64(999999999), 3, uint8(1))
	f.Add(int64(-62135596800), int64(0), 12, uint8(2))
	f.Add(int64(1320000000), int64(0), 1, uint8(4))
	f.Fuzz(func(t *testing.T, sec, nsec int64, months int, zone uint8) {
		received := time.Unix(sec, nsec).In(locs[int(zone)%len(locs)])
		got := Due(received, months) // must never panic, whatever the input
		if months < 1 || months > 1200 {
			return
		}
		// The property is only meaningful for years time.Time represents
		// without overflow; stay well inside year 1..9999.
		if y := received.Year(); y < 1 || y > 9000 {
			return
		}
		if !got.After(received) {
			t.Fatalf("Due(%v, %d) = %v, want after received", received, months, got)
		}
		if limit := received.Add(time.Duration(31*months+1) * 24 * time.Hour); got.After(limit) {
			t.Fatalf("Due(%v, %d) = %v, want at most %d days later", received, months, got, 31*months+1)
		}
		// In UTC the day never moves forward. (In zones that skipped a
		// whole day, such as Pacific/Apia on 30 December 2011, time.Date
		// normalises a missing day forward; see TestDueSkippedDay.)
		if _, _, d := got.Date(); received.Location() == time.UTC && d > received.Day() {
			t.Fatalf("Due(%v, %d) = %v, day %d after the receipt day %d", received, months, got, d, received.Day())
		}
	})
}

// TestExtendFields: an error about the number of months names the field
// "months", one about the reason the field "reason", so front ends can
// place them without reading the message.
func TestExtendFields(t *testing.T) {
	received := date(2026, 1, 31, 9, 0, time.UTC)
	now := date(2026, 2, 10, 12, 0, time.UTC)
	first, second := Due(received, 1), Due(received, 2)
	for _, c := range []struct {
		name, reason, want string
		current            time.Time
		months             int
	}{
		{"zero months", "complex", "months", first, 0},
		{"three months", "complex", "months", first, 3},
		{"total over two", "complex", "months", second, 2},
		{"empty reason", "", "reason", first, 1},
		{"long reason", strings.Repeat("x", MaxReasonLen+1), "reason", first, 1},
		{"bad utf8", "bad \xff", "reason", first, 1},
	} {
		_, err := Extend(received, now, c.current, c.months, c.reason)
		if got := errs.FieldOf(err); got != c.want {
			t.Errorf("%s: field %q (%v), want %q", c.name, got, err, c.want)
		}
	}
}

// TestExtensionsAgreeWithExtend: the months Extensions offers are exactly
// those Extend accepts, and when it offers none it gives Extend's error
// code, for requests at every stage and every day of their first months.
func TestExtensionsAgreeWithExtend(t *testing.T) {
	received := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	dues := []time.Time{Due(received, 1), Due(received, 2), Due(received, 3), received.Add(40 * 24 * time.Hour)}
	for _, due := range dues {
		for day := 0; day < 70; day++ {
			now := received.Add(time.Duration(day) * 24 * time.Hour)
			offered, oerr := Extensions(received, now, due)
			for m := 1; m <= MaxExtraMonths; m++ {
				_, err := Extend(received, now, due, m, "complex request")
				if (err == nil) != slices.Contains(offered, m) {
					t.Fatalf("due %s, day %d, %d months: Extend says %v, Extensions offers %v",
						due.Format(time.DateOnly), day, m, err, offered)
				}
			}
			if len(offered) == 0 {
				_, err := Extend(received, now, due, 1, "complex request")
				if oerr == nil || errs.CodeOf(oerr) != errs.CodeOf(err) {
					t.Fatalf("due %s, day %d: Extensions error %v, Extend error %v; want the same code",
						due.Format(time.DateOnly), day, oerr, err)
				}
			} else if oerr != nil {
				t.Fatalf("due %s, day %d: offered %v with error %v", due.Format(time.DateOnly), day, offered, oerr)
			}
		}
	}
	if got, err := Extensions(received, received, Due(received, 1)); err != nil || !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("fresh request: got %v, %v; want [1 2]", got, err)
	}
}

func TestExtensions(t *testing.T) {
	received := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	due := func(k int) time.Time { return Due(received, Months+k) }
	for _, c := range []struct {
		name string
		due  time.Time
		now  time.Time
		want []int
		code errs.Code
	}{
		{"fresh", due(0), received.AddDate(0, 0, 1), []int{1, 2}, ""},
		{"extended once", due(1), received.AddDate(0, 0, 5), []int{1}, ""},
		{"extended to the maximum", due(2), received.AddDate(0, 0, 5), nil, errs.Invalid},
		{"after the first month", due(0), received.AddDate(0, 1, 2), nil, errs.Conflict},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Extensions(received, c.now, c.due)
			if !slices.Equal(got, c.want) || errs.CodeOf(err) != c.code {
				t.Errorf("got %v, %v; want %v, code %q", got, err, c.want, c.code)
			}
		})
	}
}
