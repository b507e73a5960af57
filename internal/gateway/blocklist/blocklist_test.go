package blocklist

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/dnsblock"
)

func parseAll(t *testing.T, in string) ([]string, Stats) {
	t.Helper()
	var names []string
	st, err := Parse(strings.NewReader(in), func(n []byte) { names = append(names, string(n)) })
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return names, st
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []string
		stats Stats
	}{
		{
			name:  "domain list with comments",
			in:    "# header\n\nAds.Example\ntracker.example. # inline\n! adblock comment\n",
			want:  []string{"ads.example", "tracker.example"},
			stats: Stats{Lines: 5, Names: 2},
		},
		{
			name:  "hosts with several names, CRLF and tabs",
			in:    "127.0.0.1 localhost\r\n::1 ip6-localhost ip6-loopback\r\n0.0.0.0\tone.example two.example\r\n0.0.0.0 0.0.0.0\n",
			want:  []string{"one.example", "two.example"},
			stats: Stats{Lines: 4, Names: 2},
		},
		{
			name:  "wildcards and a leading dot",
			in:    "*.wild.example\n.dot.example\n",
			want:  []string{"wild.example", "dot.example"},
			stats: Stats{Lines: 2, Names: 2},
		},
		{
			name:  "last line without newline",
			in:    "a.example\nb.example",
			want:  []string{"a.example", "b.example"},
			stats: Stats{Lines: 2, Names: 2},
		},
		{
			name: "invalid entries skipped and counted",
			in: "ok.example\nbad..example\nspace in.example\n0.0.0.0\n||adblock.example^\n" +
				strings.Repeat("a", 64) + ".example\nunder_score.example\n192.0.2.1.\n",
			want:  []string{"ok.example", "under_score.example"},
			stats: Stats{Lines: 8, Names: 2, Skipped: 6, FirstSkipped: 2},
		},
		{
			name:  "overlong line skipped, next line read",
			in:    strings.Repeat("x", MaxLine+10) + "\nafter.example\n",
			want:  []string{"after.example"},
			stats: Stats{Lines: 2, Names: 1, Skipped: 1, FirstSkipped: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, st := parseAll(t, tt.in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("names: got %q, want %q", got, tt.want)
			}
			if st != tt.stats {
				t.Errorf("stats: got %+v, want %+v", st, tt.stats)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	long := strings.Repeat("a.", 126) + "bc" // 254 bytes
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Example.COM", "example.com", true},
		{"example.com.", "example.com", true},
		{"*.example.com", "example.com", true},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", true},
		{"com", "com", true},
		{"", "", false},
		{".", "", false},
		{"a..b", "", false},
		{"a.b..", "", false},
		{"ex ample.com", "", false},
		{"bücher.example", "", false},
		{"10.0.0.1", "", false},
		{long, "", false},
		{long[2:], long[2:], true},
	}
	for _, tt := range tests {
		got, ok := Canonical(nil, []byte(tt.in))
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("Canonical(%q): got %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestIndexMatch(t *testing.T) {
	b := NewBuilder(0, 0)
	ads, trk, mal := dnsblock.Set(dnsblock.Ads), dnsblock.Set(dnsblock.Trackers), dnsblock.Set(dnsblock.Malware)
	b.Add([]byte("ads.example"), ads)
	b.Add([]byte("both.example"), ads)
	b.Add([]byte("both.example"), trk)
	b.Add([]byte("evil.test"), mal)
	b.Add([]byte("deep.evil.test"), trk)
	if !b.Add([]byte("x.example"), ads) || b.Add(nil, ads) || b.Add(bytes.Repeat([]byte("a"), 254), ads) {
		t.Fatal("Add: want true for a name, false for an empty or overlong one")
	}
	ix := b.Index()
	if ix.Len() != 5 {
		t.Errorf("Len: got %d, want 5", ix.Len())
	}
	tests := []struct {
		name string
		want dnsblock.Set
	}{
		{"ads.example", ads},
		{"sub.ads.example", ads},
		{"a.b.c.ads.example", ads},
		{"notads.example", 0},
		{"example", 0},
		{"both.example", ads | trk},
		{"x.deep.evil.test", mal | trk},
		{"evil.test", mal},
		{"test", 0},
		{"", 0},
		{"ads\x00x.example", 0}, // a label holding a dot, as dnsfwd passes it
	}
	for _, tt := range tests {
		if got := ix.Match([]byte(tt.name)); got != tt.want {
			t.Errorf("Match(%q): got %v, want %v", tt.name, got, tt.want)
		}
	}
	var nilIx *Index
	if nilIx.Match([]byte("ads.example")) != 0 || nilIx.Len() != 0 {
		t.Error("nil Index: want no match")
	}
}

// TestIndexGrows checks that many names survive the table's growth.
func TestIndexGrows(t *testing.T) {
	var b Builder
	for i := range 5000 {
		b.Add(fmt.Appendf(nil, "host%d.example", i), dnsblock.Set(1<<(i%5)))
	}
	ix := b.Index()
	if ix.Len() != 5000 {
		t.Fatalf("Len: got %d, want 5000", ix.Len())
	}
	for i := range 5000 {
		if got, want := ix.Match(fmt.Appendf(nil, "www.host%d.example", i)), dnsblock.Set(1<<(i%5)); got != want {
			t.Fatalf("host%d: got %v, want %v", i, got, want)
		}
	}
	if ix.Match([]byte("host5000.example")) != 0 {
		t.Error("an absent name matched")
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestListsReloadAndTotals(t *testing.T) {
	dir := t.TempDir()
	adsFile := writeFile(t, dir, "ads.txt", "ads.example\n")
	trkFile := writeFile(t, dir, "trk.hosts", "0.0.0.0 tracker.example ads.example\n")
	l, rep, err := New([]Source{{dnsblock.Ads, adsFile}, {dnsblock.Trackers, trkFile}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Names != 2 || len(rep.Files) != 2 || rep.Files[1].Names != 2 {
		t.Errorf("report: got %+v, want 2 names from 2 files", rep)
	}
	if l.Categories() != dnsblock.Set(dnsblock.Ads|dnsblock.Trackers) {
		t.Errorf("Categories: got %v", l.Categories())
	}
	adsOnly, _ := l.Blocker(dnsblock.Set(dnsblock.Ads))
	both, _ := l.Blocker(dnsblock.Set(dnsblock.Ads | dnsblock.Trackers))
	malware, _ := l.Blocker(dnsblock.Set(dnsblock.Malware))
	checks := []struct {
		b    *Blocker
		name string
		want bool
	}{
		{adsOnly, "www.ads.example", true},
		{adsOnly, "tracker.example", false},
		{both, "tracker.example", true},
		{both, "ads.example", true},
		{malware, "ads.example", false},
	}
	for _, c := range checks {
		if got := c.b.Blocked([]byte(c.name)); got != c.want {
			t.Errorf("%v blocks %s: got %v, want %v", c.b.Set(), c.name, got, c.want)
		}
	}
	want := map[string]uint64{"ads": 2, "trackers": 2, "malware": 0, "adult": 0, "gambling": 0}
	if got := l.Totals(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Totals: got %v, want %v", got, want)
	}

	// A reload picks up the new file; a failed one keeps what is in force.
	writeFile(t, dir, "ads.txt", "new.example\n")
	if _, err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if adsOnly.Blocked([]byte("ads.example")) || !adsOnly.Blocked([]byte("new.example")) {
		t.Error("after reload: want new.example blocked and ads.example not")
	}
	os.Remove(adsFile)
	if _, err := l.Reload(); err == nil || !strings.Contains(err.Error(), adsFile) {
		t.Fatalf("reload of a missing file: got %v, want an error naming it", err)
	}
	if !adsOnly.Blocked([]byte("new.example")) {
		t.Error("after a failed reload: want the lists in force kept")
	}
	if got := l.Totals()["ads"]; got != 4 {
		t.Errorf("ads total after reloads: got %d, want 4 (kept across reloads)", got)
	}
	if _, err := l.Blocker(0); err == nil {
		t.Error("Blocker(empty set): got nil error")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := writeFile(t, dir, "garbage", "this is not\na list at all\n!!\n")
	empty := writeFile(t, dir, "empty", "# nothing yet\n")
	if _, _, err := Load([]Source{{dnsblock.Ads, garbage}}); err == nil ||
		!strings.Contains(err.Error(), "no valid domain name: 2 entries skipped, the first on line 1") {
		t.Errorf("garbage: got %v, want a clear error", err)
	}
	if ix, _, err := Load([]Source{{dnsblock.Ads, empty}}); err != nil || ix.Len() != 0 {
		t.Errorf("a list with only comments: got %v, %v; want an empty index", ix.Len(), err)
	}
	if _, _, err := Load([]Source{{dnsblock.Category(3), empty}}); err == nil {
		t.Error("an invalid category: got nil error")
	}
}

// TestShippedTestList checks the tiny list shipped for operators.
func TestShippedTestList(t *testing.T) {
	ix, rep, err := Load([]Source{{dnsblock.Ads, filepath.Join("..", "..", "..", "packaging", "blocklists", "test-ads.txt")}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files[0].Skipped != 0 || ix.Len() != 4 {
		t.Errorf("got %d names, %d skipped; want 4 and 0", ix.Len(), rep.Files[0].Skipped)
	}
	for _, n := range []string{"ads.blocked.test", "ads.example", "telemetry.example"} {
		if ix.Match([]byte(n)) == 0 {
			t.Errorf("%s not blocked by the test list", n)
		}
	}
}

// FuzzParse checks that Parse never panics, that every name it passes on
// is canonical, and that its counts add up.
func FuzzParse(f *testing.F) {
	f.Add([]byte("# c\nads.example\n0.0.0.0 a.example b.example\n"))
	f.Add([]byte("::1 localhost\r\n*.w.example.\n||x^\n"))
	f.Add([]byte("\x00\xff\n\n \t \n.\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var names int
		st, err := Parse(bytes.NewReader(in), func(n []byte) {
			names++
			c, ok := Canonical(nil, n)
			if !ok || !bytes.Equal(c, n) {
				t.Fatalf("name %q is not canonical", n)
			}
		})
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if names != st.Names || st.Lines > bytes.Count(in, []byte("\n"))+1 || (st.Skipped > 0) != (st.FirstSkipped > 0) ||
			st.FirstSkipped > st.Lines {
			t.Fatalf("stats %+v inconsistent with %d names from %d bytes", st, names, len(in))
		}
	})
}
