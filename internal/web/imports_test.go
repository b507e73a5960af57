package web

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestWebDoesNotImportAPI: the portal and console share the HTTP edge with
// the JSON API through package httpedge, not through package api. No
// package the web package is built from (its own non-test files and every
// package of this module they import, transitively) may be package api.
func TestWebDoesNotImportAPI(t *testing.T) {
	const module = "github.com/nitronet/nitronet/"
	const forbidden = module + "internal/api"
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !strings.Contains(string(b), "module "+strings.TrimSuffix(module, "/")) {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	seen := map[string]bool{}
	var visit func(path, via string)
	visit = func(path, via string) {
		if seen[path] {
			return
		}
		seen[path] = true
		if path == forbidden {
			t.Errorf("package web depends on %s (via %s)", forbidden, via)
			return
		}
		dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(path, module)))
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("package %s: no Go files in %s (%v)", path, dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, spec := range af.Imports {
				imp, _ := strconv.Unquote(spec.Path.Value)
				if strings.HasPrefix(imp, module) {
					visit(imp, path)
				}
			}
		}
	}
	visit(module+"internal/web", "")
	if !seen[module+"internal/httpedge"] {
		t.Errorf("package web does not use internal/httpedge: the check looks at the wrong packages")
	}
}
