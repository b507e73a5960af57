package blocklist

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
)

// MaxLine is the longest line Parse reads; a longer one is skipped whole.
const MaxLine = 4096

// maxName is the longest domain name in presentation form without the
// final dot.
const maxName = 253

// Stats describes one parsed list.
type Stats struct {
	// Lines is the number of lines read.
	Lines int
	// Names is the number of names handed to add, repeats included.
	Names int
	// Skipped counts entries that are not a valid domain name, lines of
	// neither format and overlong lines. They are left out.
	Skipped int
	// FirstSkipped is the line number (from 1) of the first skipped entry,
	// or 0 if none was.
	FirstSkipped int
}

// Parse reads one blocklist from r and calls add with every name it lists,
// in canonical form: lower case, without a final dot or a leading "*.".
// The slice passed to add is valid only during the call. Two formats are
// read, line by line, and may be mixed:
//
//   - domain list: one domain name per line ("ads.example");
//   - hosts: an IP address followed by one or more names
//     ("0.0.0.0 ads.example"); the address is ignored.
//
// Everything from a '#' to the end of a line is a comment, as is a line
// starting with '!'; blank lines are ignored. A name is valid if it has
// labels of 1 to 63 letters, digits, '-' or '_' and at most 253 bytes.
// Names that are IP addresses and the boilerplate of hosts files
// (localhost, broadcasthost, ...) are ignored. Anything else invalid, and
// lines longer than MaxLine, is skipped and counted in Stats, never fatal:
// Parse returns an error only when reading r fails.
func Parse(r io.Reader, add func(name []byte)) (Stats, error) {
	var st Stats
	br := bufio.NewReaderSize(r, MaxLine)
	var name [maxName]byte
	skip := func() {
		st.Skipped++
		if st.FirstSkipped == 0 {
			st.FirstSkipped = st.Lines
		}
	}
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			st.Lines++
			skip()
			if err = discardLine(br); err != nil {
				return st, ignoreEOF(err)
			}
			continue
		}
		if len(line) > 0 {
			st.Lines++
			parseLine(line, name[:0], add, &st, skip)
		}
		if err != nil {
			return st, ignoreEOF(err)
		}
	}
}

func ignoreEOF(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}

// discardLine reads up to and including the next newline.
func discardLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

// parseLine handles one line (with its newline, if any).
func parseLine(line, buf []byte, add func([]byte), st *Stats, skip func()) {
	if i := bytes.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] == '!' {
		return
	}
	first, rest := cutField(line)
	if _, err := netip.ParseAddr(string(first)); err == nil {
		// hosts: ADDRESS NAME...
		if len(rest) == 0 {
			skip()
			return
		}
		for len(rest) > 0 {
			var f []byte
			f, rest = cutField(rest)
			addName(f, buf, add, st, skip)
		}
		return
	}
	if len(rest) > 0 {
		skip() // a domain list has one name per line
		return
	}
	addName(first, buf, add, st, skip)
}

// cutField returns the first whitespace-separated field of s (which has no
// leading whitespace) and the rest, without its leading whitespace.
func cutField(s []byte) (field, rest []byte) {
	i := bytes.IndexAny(s, " \t\v\f\r\n")
	if i < 0 {
		return s, nil
	}
	return s[:i], bytes.TrimLeft(s[i:], " \t\v\f\r\n")
}

// addName canonicalises f into buf and adds it, or counts it skipped.
func addName(f, buf []byte, add func([]byte), st *Stats, skip func()) {
	n, ok := Canonical(buf, f)
	switch {
	case !ok:
		if _, err := netip.ParseAddr(string(f)); err == nil {
			return // "0.0.0.0 0.0.0.0" and the like
		}
		skip()
	case boilerplate(n):
	default:
		st.Names++
		add(n)
	}
}

// boilerplate reports whether n is one of the names every hosts file maps
// to itself, which must never be blocked.
func boilerplate(n []byte) bool {
	switch string(n) {
	case "localhost", "localhost.localdomain", "local", "broadcasthost", "localdomain",
		"ip6-localhost", "ip6-loopback", "ip6-localnet", "ip6-mcastprefix",
		"ip6-allnodes", "ip6-allrouters", "ip6-allhosts":
		return true
	}
	return false
}

// Canonical appends to dst the canonical form of the domain name s: lower
// case, without one final dot and without one leading "*." or ".". It
// reports false, with dst unchanged, if s is not a valid name (see Parse);
// a name made only of digits and dots (an IPv4 address) is refused too.
func Canonical(dst, s []byte) ([]byte, bool) {
	s = bytes.TrimSuffix(s, []byte{'.'})
	if bytes.HasPrefix(s, []byte("*.")) {
		s = s[2:]
	} else if len(s) > 0 && s[0] == '.' {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > maxName {
		return dst, false
	}
	out := dst
	label, digitsOnly := 0, true
	for _, c := range s {
		switch {
		case c == '.':
			if label == 0 {
				return dst, false
			}
			label = 0
			out = append(out, c)
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
			digitsOnly = false
		case 'a' <= c && c <= 'z', c == '-', c == '_':
			digitsOnly = false
		case '0' <= c && c <= '9':
		default:
			return dst, false
		}
		label++
		if label > 63 {
			return dst, false
		}
		out = append(out, c)
	}
	if label == 0 || digitsOnly {
		return dst, false
	}
	return out, true
}
