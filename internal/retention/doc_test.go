package retention_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/retention"
)

var update = flag.Bool("update", false, "rewrite the generated parts of docs/retention.md")

// regenerate is how to bring the document up to date.
const regenerate = "go test ./internal/retention -run TestRetentionDoc -update"

// TestRetentionDoc checks that the generated blocks of docs/retention.md
// (the rules table and the --retention syntax) are what the default
// inventory and the sweeper's plan give; with -update it rewrites them.
func TestRetentionDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "retention.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	want := doc
	for _, blk := range []struct{ name, body string }{
		{"rules", retention.Markdown(retention.Rules(inventory.Default()))},
		{"overrides", retention.OverrideSyntax()},
	} {
		if want, err = replaceBlock(want, blk.name, blk.body); err != nil {
			t.Fatalf("docs/retention.md: %v", err)
		}
	}
	if doc == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the generated blocks of %s", path)
		return
	}
	t.Errorf("docs/retention.md does not match the inventory:\n%s\nRegenerate it with: %s", firstDifference(doc, want), regenerate)
}

// replaceBlock replaces the lines between the markers
// "<!-- BEGIN GENERATED name ... -->" and "<!-- END GENERATED name -->"
// with body.
func replaceBlock(doc, name, body string) (string, error) {
	begin, end := "<!-- BEGIN GENERATED "+name, "<!-- END GENERATED "+name+" -->"
	i := strings.Index(doc, begin)
	if i < 0 {
		return "", fmt.Errorf("no %q marker", begin+" -->")
	}
	start := i + strings.Index(doc[i:], "\n") + 1
	j := strings.Index(doc[start:], end)
	if j < 0 {
		return "", fmt.Errorf("no %q marker after %q", end, begin)
	}
	return doc[:start] + body + doc[start+j:], nil
}

// firstDifference describes the first line where got and want differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d\n  in the file: %q\n  generated:   %q", i+1, gl, wl)
		}
	}
	return "(no line differs)"
}
