package privacy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The readable HTML copy of an export shows the sections other packages
// contribute (ExportSource) as headings and tables a person understands:
// a title for each known section, column labels instead of JSON keys,
// "None" instead of an empty list, and every time in one format
// (htmlTime). The JSON export keeps the keys.

// htmlTime is the one timestamp format of the HTML copy, and of times
// in texts for people (outcomes).
func htmlTime(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") }

// sectionTitles are the headings and introductions of known sections.
func sectionTitles() map[string][2]string {
	return map[string][2]string{
		"inbox":              {"Messages in your inbox", "What we sent to your account's inbox, and when you read it."},
		"policy_acceptances": {"Policies you accepted", "The versions of our privacy policy and terms you accepted, and when."},
		"disclosures":        {"Orders from authorities about your account", "Requests for your data from authorities, once we may tell you of them."},
		"recipients":         {"Companies that received your data", "The processors that handled your data for us (for example to deliver email or text messages): which data, first and last time. Never the content."},
	}
}

// fieldLabels are the column labels of known keys.
func fieldLabels() map[string]string {
	return map[string]string{
		"id": "ID", "kind": "Kind", "subject": "Subject", "body": "Message", "created_at": "Sent", "read_at": "Read",
		"request_id": "About request", "document_id": "Document", "version": "Version", "accepted_at": "Accepted",
		"processor": "Company", "categories": "Data", "first_at": "First", "last_at": "Latest",
	}
}

// readableSection is one contributed section, ready to show.
type readableSection struct {
	Title, Intro string
	// Exactly one of these is set, or none for an empty section.
	Table *readableTable
	Pairs [][2]string
	List  []string
}

// readableTable is a list of records as a table.
type readableTable struct {
	Head []string
	Rows [][]string
}

// readableSections converts the export's sections, by name, in name order.
func readableSections(sections map[string]any) ([]readableSection, error) {
	names := make([]string, 0, len(sections))
	for n := range sections {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]readableSection, 0, len(names))
	for _, n := range names {
		s, err := readable(n, sections[n])
		if err != nil {
			return nil, fmt.Errorf("export section %s: %w", n, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// readable converts one section.
func readable(name string, data any) (readableSection, error) {
	s := readableSection{Title: humanize(name)}
	if t, ok := sectionTitles()[name]; ok {
		s.Title, s.Intro = t[0], t[1]
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return s, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return s, err
	}
	order := func(keys []string) []string { return keyOrder(raw, keys) }
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return s, nil
		}
		if _, records := x[0].(map[string]any); !records {
			for _, e := range x {
				s.List = append(s.List, value("", e))
			}
			return s, nil
		}
		s.Table = table(x, order)
	case map[string]any:
		for _, k := range order(keys(x)) {
			if empty(x[k]) {
				continue
			}
			s.Pairs = append(s.Pairs, [2]string{label(k), value(k, x[k])})
		}
	case nil:
	default:
		s.List = []string{value("", x)}
	}
	return s, nil
}

// table lays records out with one column per key any of them has.
func table(records []any, order func([]string) []string) *readableTable {
	var ks []string
	for _, r := range records {
		m, _ := r.(map[string]any)
		for k := range m {
			if !slices.Contains(ks, k) {
				ks = append(ks, k)
			}
		}
	}
	ks = order(ks)
	t := &readableTable{}
	for _, k := range ks {
		t.Head = append(t.Head, label(k))
	}
	for _, r := range records {
		m, _ := r.(map[string]any)
		row := make([]string, 0, len(ks))
		for _, k := range ks {
			row = append(row, value(k, m[k]))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// keyOrder sorts ks by where each first appears as a key in raw (the
// order of the Go struct's fields), unknown ones last by name.
func keyOrder(raw []byte, ks []string) []string {
	pos := func(k string) int {
		if i := bytes.Index(raw, []byte(`"`+k+`":`)); i >= 0 {
			return i
		}
		return len(raw)
	}
	out := slices.Clone(ks)
	slices.SortStableFunc(out, func(a, b string) int {
		if c := pos(a) - pos(b); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return out
}

// label names key k for people.
func label(k string) string {
	if l, ok := fieldLabels()[k]; ok {
		return l
	}
	switch {
	case strings.HasSuffix(k, "_at"):
		k = strings.TrimSuffix(k, "_at")
	case strings.HasSuffix(k, "_id"):
		return humanize(strings.TrimSuffix(k, "_id")) + " ID"
	}
	return humanize(k)
}

// humanize turns snake_case into a sentence-case phrase.
func humanize(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "_", " "))
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// empty reports whether v holds nothing worth a row.
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// value formats v (the value of key k) as text: times in the one format,
// yes and no, lists joined, nested records as "label: value" pairs.
func value(k string, v any) string {
	switch x := v.(type) {
	case nil:
		if strings.HasSuffix(k, "_at") {
			return "not yet"
		}
		return "none"
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return htmlTime(t)
		}
		return x
	case json.Number:
		return x.String()
	case []any:
		if len(x) == 0 {
			return "none"
		}
		parts := make([]string, 0, len(x))
		for _, e := range x {
			parts = append(parts, value("", e))
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		var parts []string
		for _, kk := range slices.Sorted(slices.Values(keys(x))) {
			if !empty(x[kk]) {
				parts = append(parts, label(kk)+": "+value(kk, x[kk]))
			}
		}
		return strings.Join(parts, "; ")
	}
	return fmt.Sprint(v)
}
