package web

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/policy"
	"github.com/nitronet/nitronet/internal/usage"
)

func TestDailyHours(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	at := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, time.UTC) }
	end := func(tm time.Time) *time.Time { return &tm }
	sessions := []usage.Session{
		{StartedAt: at(9, 9, 0), EndedAt: end(at(9, 11, 30))},  // 2.5 h on the 9th
		{StartedAt: at(7, 22, 0), EndedAt: end(at(8, 1, 0))},   // 2 h on the 7th, 1 h on the 8th
		{StartedAt: at(10, 11, 0)},                             // open: 1 h until now
		{StartedAt: at(1, 0, 0), EndedAt: end(at(1, 0, 0))},    // outside the window
		{StartedAt: at(9, 10, 0), EndedAt: end(at(9, 10, 30))}, // a second device: adds up
	}
	days := dailyHours(sessions, now, 5)
	want := map[int]float64{6: 0, 7: 2, 8: 1, 9: 3, 10: 1}
	if len(days) != 5 {
		t.Fatalf("got %d days, want 5", len(days))
	}
	for _, d := range days {
		if got := d.Hours; got != want[d.Day.Day()] {
			t.Errorf("day %s: got %v hours, want %v", d.Day.Format("2 Jan"), got, want[d.Day.Day()])
		}
	}
	c := layoutChart(days)
	if len(c.Bars) != 5 || c.Total != "7" {
		t.Errorf("got %d bars and total %q, want 5 bars and total 7", len(c.Bars), c.Total)
	}
	for _, b := range c.Bars {
		if b.Y < float64(c.Top) || b.Y+b.H > float64(c.Top+c.PlotHeight)+1e-9 {
			t.Errorf("bar %+v leaves the plot area", b)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	text := "Title\n\nChanges to this Document\n\nA paragraph\nthat wraps.\n\n  • one\n  • two:\n    • two a\n    • two b\n"
	got := parsePolicy(text)
	if len(got) != 4 || got[0].Heading != "Title" || got[1].Heading != "Changes to this Document" ||
		got[2].Paragraph != "A paragraph that wraps." || len(got[3].Items) != 2 || len(got[3].Items[1].Sub) != 2 {
		t.Fatalf("got %+v", got)
	}
	shipped := policy.Shipped()
	if !strings.Contains(shipped, "no-log VPN service") {
		t.Fatalf("shipped policy lacks its text")
	}
	for _, b := range parsePolicy(shipped) {
		if b.Heading == "" && b.Paragraph == "" && len(b.Items) == 0 {
			t.Fatalf("empty block in the parsed policy")
		}
	}
}

func TestDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{0, "0 min"}, {59 * time.Minute, "59 min"}, {125 * time.Minute, "2 h 05 min"}, {-time.Minute, "0 min"}} {
		if got := duration(c.d); got != c.want {
			t.Errorf("duration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestTimeLeft(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{36 * time.Hour, "2 days left"}, {30 * time.Hour, "1 day left"}, {2 * time.Hour, "due today"},
		{-2 * time.Hour, "due today, passed"}, {-50 * time.Hour, "2 days overdue"},
	} {
		if got := timeLeft(c.d); got != c.want {
			t.Errorf("timeLeft(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestEndedPeriods(t *testing.T) {
	for _, c := range []struct {
		now  time.Time
		want []string
	}{
		{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), []string{"2025H2", "2025H1", "2024H2"}},
		{time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC), []string{"2026H1", "2025H2", "2025H1"}},
	} {
		if got := endedPeriods(c.now, 3); !slices.Equal(got, c.want) {
			t.Errorf("endedPeriods(%s) = %v, want %v", c.now.Format(time.DateOnly), got, c.want)
		}
	}
}
