package web

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/nitronet/nitronet/internal/usage"
)

// chartDays is how many days the usage page covers.
const chartDays = 30

// dayHours is the connected time of one UTC day.
type dayHours struct {
	Day   time.Time // midnight UTC
	Hours float64
}

// dailyHours returns, for each of the days UTC days ending with now's,
// oldest first, the hours of sessions that fall in that day. Sessions are
// clipped at day boundaries; an open session counts until now. Sessions
// of several devices at once add up, so a day may exceed 24 hours.
func dailyHours(sessions []usage.Session, now time.Time, days int) []dayHours {
	now = now.UTC()
	last := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	first := last.AddDate(0, 0, -(days - 1))
	out := make([]dayHours, days)
	for i := range out {
		out[i].Day = first.AddDate(0, 0, i)
	}
	for _, s := range sessions {
		start := s.StartedAt.UTC()
		end := now
		if s.EndedAt != nil {
			end = s.EndedAt.UTC()
		}
		if end.After(now) {
			end = now
		}
		for i := range out {
			ds, de := out[i].Day, out[i].Day.AddDate(0, 0, 1)
			a, b := maxTime(start, ds), minTime(end, de)
			if b.After(a) {
				out[i].Hours += b.Sub(a).Hours()
			}
		}
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// chart is a bar chart laid out for the SVG template: all coordinates are
// in the SVG's user units.
type chart struct {
	Width, Height        int
	Left, Top, PlotWidth int
	PlotHeight           int
	Bars                 []bar
	Ticks                []tick
	Labels               []xLabel
	Total                string
}

// bar is one day's bar.
type bar struct {
	X, Y, W, H float64
	Title      string
}

// tick is a horizontal grid line with its value.
type tick struct {
	Y     float64
	Label string
}

// xLabel is a date under the x axis; Anchor is its SVG text-anchor.
type xLabel struct {
	X      float64
	Label  string
	Anchor string
}

// layoutChart lays out the bars of days in a fixed-size SVG.
func layoutChart(days []dayHours) chart {
	c := chart{Width: 720, Height: 280, Left: 56, Top: 14}
	c.PlotWidth = c.Width - c.Left - 8
	c.PlotHeight = c.Height - c.Top - 44
	peak, total := 0.0, 0.0
	for _, d := range days {
		peak = math.Max(peak, d.Hours)
		total += d.Hours
	}
	// A round axis maximum with 4 steps.
	step := 1.0
	for _, s := range []float64{1, 2, 3, 6, 12, 24, 48, 96} {
		step = s
		if peak <= 4*s {
			break
		}
	}
	top := 4 * step
	if peak > top {
		top = math.Ceil(peak)
		step = top / 4
	}
	plotBottom := float64(c.Top + c.PlotHeight)
	for i := 0; i <= 4; i++ {
		v := step * float64(i)
		c.Ticks = append(c.Ticks, tick{Y: plotBottom - v/top*float64(c.PlotHeight), Label: trimFloat(v) + " h"})
	}
	slot := float64(c.PlotWidth) / float64(len(days))
	for i, d := range days {
		hgt := d.Hours / top * float64(c.PlotHeight)
		x := float64(c.Left) + float64(i)*slot
		c.Bars = append(c.Bars, bar{X: x + slot*0.15, Y: plotBottom - hgt, W: slot * 0.7, H: hgt,
			Title: fmt.Sprintf("%s: %s hours", d.Day.Format("2 Jan"), trimFloat(round1(d.Hours)))})
		switch {
		case i == len(days)-1:
			c.Labels = append(c.Labels, xLabel{X: x + slot, Label: d.Day.Format("2 Jan"), Anchor: "end"})
		case i%7 == 0 && i < len(days)-4:
			c.Labels = append(c.Labels, xLabel{X: x + slot/2, Label: d.Day.Format("2 Jan"), Anchor: "middle"})
		}
	}
	c.Total = trimFloat(round1(total))
	return c
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// trimFloat formats f with at most one decimal and no trailing ".0".
func trimFloat(f float64) string {
	s := fmt.Sprintf("%.1f", f)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}

// sessionRow is one line of the usage table.
type sessionRow struct {
	Device   string
	Region   string
	Start    time.Time
	End      *time.Time
	Duration string
}

// usageData is the data of the usage page.
type usageData struct {
	Recording bool
	Days      int
	Chart     chart
	Rows      []sessionRow
}

// usagePage shows the account's session intervals of the last 30 days as
// a table and as a server-drawn SVG chart of hours per day.
func (h *Handler) usagePage(w http.ResponseWriter, r *http.Request, st *state) {
	sessions, err := h.cfg.Usage.ForAccount(r.Context(), st.accountID, chartDays)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	ds, err := h.cfg.Devices.List(r.Context(), st.accountID)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	names := map[string]string{}
	for _, d := range ds {
		names[d.ID] = d.Name
	}
	now := h.cfg.Clock()
	rows := make([]sessionRow, 0, len(sessions))
	for _, s := range sessions {
		name, ok := names[s.DeviceID]
		if !ok {
			name = "(removed device)"
		}
		end := now
		if s.EndedAt != nil {
			end = *s.EndedAt
		}
		rows = append(rows, sessionRow{Device: name, Region: s.Region, Start: s.StartedAt, End: s.EndedAt,
			Duration: duration(end.Sub(s.StartedAt))})
	}
	h.render(w, r, st, http.StatusOK, "usage", &view{Title: "Usage", Nav: "usage", Data: usageData{
		Recording: h.cfg.Usage.Mode() != usage.RecordNone, Days: chartDays,
		Chart: layoutChart(dailyHours(sessions, now, chartDays)), Rows: rows}})
}

// duration formats d as hours and minutes, e.g. "2 h 05 min".
func duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	m := int(d.Round(time.Minute) / time.Minute)
	if m < 60 {
		return fmt.Sprintf("%d min", m)
	}
	return fmt.Sprintf("%d h %02d min", m/60, m%60)
}
