package httpedge

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/errs"
)

func TestStatus(t *testing.T) {
	for c, want := range map[errs.Code]int{
		errs.Invalid: 400, errs.Unauthenticated: 401, errs.Forbidden: 403, errs.Precondition: 403,
		errs.NotFound: 404, errs.Conflict: 409, errs.Gone: 410, errs.TooLarge: 413, errs.RateLimited: 429,
		errs.Unavailable: 503, errs.Internal: 500, "": 200, "no-such-code": 500,
	} {
		if got := Status(c); got != want {
			t.Errorf("Status(%q) = %d, want %d", c, got, want)
		}
	}
	if got := StatusOf(fmt.Errorf("wrapped: %w", errs.E(errs.Gone, "x"))); got != http.StatusGone {
		t.Errorf("StatusOf(wrapped Gone) = %d", got)
	}
	if got := StatusOf(errors.New("plain")); got != http.StatusInternalServerError {
		t.Errorf("StatusOf(plain) = %d", got)
	}
}

// codeNames returns the names of errs' Code constants, read from its
// source so that a new code is covered without touching this test.
func codeNames(t *testing.T, root string) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, "internal", "errs", "errs.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "Code" {
				for _, n := range vs.Names {
					out[n.Name] = true
				}
			}
		}
	}
	if len(out) < 5 {
		t.Fatalf("found only %d errs codes", len(out))
	}
	return out
}

// mentions reports whether n contains a selector pkg.Name with a name
// accepted by ok.
func mentions(n ast.Node, pkg string, ok func(string) bool) bool {
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		if s, is := n.(*ast.SelectorExpr); is {
			if x, is := s.X.(*ast.Ident); is && x.Name == pkg && ok(s.Sel.Name) {
				found = true
			}
		}
		return !found
	})
	return found
}

// remappings returns the places in the Go source src that decide an HTTP
// status from an errs code: a case on an errs code whose body names an
// http.Status constant, an if on an errs code whose body does, or a map
// from errs codes to statuses.
func remappings(fset *token.FileSet, f *ast.File, codes map[string]bool) []string {
	isCode := func(n string) bool { return codes[n] }
	isStatus := func(n string) bool { return strings.HasPrefix(n, "Status") }
	var out []string
	report := func(n ast.Node, what string) { out = append(out, fset.Position(n.Pos()).String()+": "+what) }
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CaseClause:
			for _, e := range n.List {
				if mentions(e, "errs", isCode) {
					for _, st := range n.Body {
						if mentions(st, "http", isStatus) {
							report(n, "a case on an error code chooses an HTTP status")
							return true
						}
					}
				}
			}
		case *ast.IfStmt:
			if mentions(n.Cond, "errs", isCode) && mentions(n.Body, "http", isStatus) {
				report(n, "an if on an error code chooses an HTTP status")
			}
		case *ast.KeyValueExpr:
			if mentions(n.Key, "errs", isCode) && mentions(n.Value, "http", isStatus) {
				report(n, "a map from an error code to an HTTP status")
			}
		}
		return true
	})
	return out
}

// TestOneStatusMapping: Status is the program's only mapping from a
// domain error code to an HTTP status. No other (non-test) source file in
// the module chooses a status from an error code.
func TestOneStatusMapping(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	codes := codeNames(t, root)
	self, _ := filepath.Abs(".")
	files := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == self || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		files++
		for _, r := range remappings(fset, f, codes) {
			t.Errorf("%s (use httpedge.StatusOf)", r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("checked only %d files", files)
	}
}

// TestRemappingsFound: the check finds the shapes of re-mapping it is
// for, such as the console's former consoleStatus.
func TestRemappingsFound(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	codes := codeNames(t, root)
	src := `package web
func consoleStatus(err error) int {
	if errs.CodeOf(err) == errs.Precondition {
		return http.StatusConflict
	}
	return statusOf(err)
}
func login(err error) {
	if errs.Is(err, errs.Precondition) {
		render(http.StatusUnauthorized)
	}
}
func status(c errs.Code) int {
	switch c {
	case errs.Invalid:
		return http.StatusBadRequest
	}
	return 0
}
var table = map[errs.Code]int{errs.Gone: http.StatusGone}
func fine(err error, status int) {
	if errs.CodeOf(err) == errs.Internal {
		log(err)
	}
	switch status {
	case http.StatusNotFound:
		heading = "Not found"
	}
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "fixture.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := remappings(fset, f, codes)
	if len(got) != 4 {
		t.Fatalf("found %d re-mappings, want 4:\n%s", len(got), strings.Join(got, "\n"))
	}
}
