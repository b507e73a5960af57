package e2e

import (
	"bytes"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// needle is something that must never be found in what the system wrote.
type needle struct {
	name string
	// text is matched case-insensitively (it must be lower case); re, if
	// set, is matched against the lower-cased content instead; raw is
	// matched byte for byte (for binary encodings).
	text string
	re   *regexp.Regexp
	raw  []byte
}

// addrNeedles returns needles for an IPv4 address: its dotted text and its
// 4-byte binary form.
func addrNeedles(what string, a netip.Addr) []needle {
	b := a.As4()
	return []needle{
		{name: what + " " + a.String(), text: a.String()},
		{name: what + " " + a.String() + " (binary)", raw: b[:]},
	}
}

// portNeedle returns a needle for a port number written as a number of its
// own (not inside a longer number or a decimal fraction).
func portNeedle(what, port string) needle {
	return needle{name: what + " " + port, re: regexp.MustCompile(`(^|[^0-9.])` + regexp.QuoteMeta(port) + `([^0-9]|$)`)}
}

// asciiLower returns b with ASCII letters lower-cased and every other byte
// unchanged (bytes.ToLower would rewrite invalid UTF-8).
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// find returns where n occurs in content (lower-cased in lower), or -1.
func (n needle) find(content, lower []byte) int {
	switch {
	case n.raw != nil:
		return bytes.Index(content, n.raw)
	case n.re != nil:
		if loc := n.re.FindIndex(lower); loc != nil {
			return loc[0]
		}
		return -1
	default:
		return bytes.Index(lower, []byte(n.text))
	}
}

// collectFiles returns every regular file under each root (a directory,
// walked recursively, or a single file).
func collectFiles(t *testing.T, roots ...string) []string {
	t.Helper()
	var files []string
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", root, err)
		}
	}
	return files
}

// excerpt returns up to 60 bytes of content around i, quoted.
func excerpt(content []byte, i int) string {
	lo, hi := max(0, i-30), min(len(content), i+30)
	return string(bytes.ToValidUTF8(content[lo:hi], []byte("?")))
}

// searchLeaks reports, as test errors, every needle found in every file.
// It returns the number of files and bytes it searched.
func searchLeaks(t *testing.T, files []string, needles []needle) (nfiles int, nbytes int64) {
	t.Helper()
	for _, f := range files {
		content, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("read %s: %v", f, err)
			continue
		}
		nfiles++
		nbytes += int64(len(content))
		lower := asciiLower(content)
		for _, n := range needles {
			if i := n.find(content, lower); i >= 0 {
				t.Errorf("%s: found %s at byte %d: %q", f, n.name, i, excerpt(content, i))
			}
		}
	}
	return nfiles, nbytes
}

// TestNeedles checks the leak search's matching itself, so that a search
// that finds nothing means something.
func TestNeedles(t *testing.T) {
	addr := netip.MustParseAddr("198.18.3.2")
	an := addrNeedles("client", addr)
	port := portNeedle("port", "47913")
	name := needle{name: "name", text: "leakcanary-host"}
	tests := []struct {
		name    string
		n       needle
		content string
		want    bool
	}{
		{"dotted address", an[0], "peer endpoint=198.18.3.2:51820", true},
		{"other address", an[0], "endpoint=198.18.3.21:51820", true}, // a prefix still counts: better a false alarm
		{"absent address", an[0], "endpoint=198.18.4.2", false},
		{"binary address", an[1], "x\xc6\x12\x03\x02y", true},
		{"binary absent", an[1], "x\xc6\x12\x03\x03y", false},
		{"port after colon", port, "dst=198.19.0.2:47913 ", true},
		{"port at end", port, "port=47913", true},
		{"port in a longer number", port, "id=1479135", false},
		{"port in a fraction", port, "duration=1.47913ms", false},
		{"name, other case", name, "query LeakCanary-Host.e2e.test", true},
		{"name absent", name, "query example.test", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := []byte(tt.content)
			if got := tt.n.find(c, asciiLower(c)) >= 0; got != tt.want {
				t.Errorf("find %s in %q: got %v, want %v", tt.n.name, tt.content, got, tt.want)
			}
		})
	}
}
