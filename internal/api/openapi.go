package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3.1 document of this API (openapi.json beside
// this file), its one source of truth. A test in internal/server checks
// that it names exactly the routes Register registers and validates real
// responses against it.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns a copy of the API's OpenAPI 3.1 document (JSON), as
// GET /api/v1/openapi.json serves it.
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }

// serveOpenAPI answers GET /api/v1/openapi.json.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(openAPIDoc)
}
