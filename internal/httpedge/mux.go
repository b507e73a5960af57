package httpedge

import "net/http"

// Mux is what the front ends (package api, package web) register their
// routes on, with net/http's pattern syntax ("METHOD /path/{name}", or a
// path alone for every method). *http.ServeMux is one; a test may pass one
// that records the routes, to check each against a table (the OpenAPI
// document, the authorisation matrix).
//
// A handler registered for a path alone may report the methods it serves
// with a method Methods() []string (GET implying HEAD); the portal's and
// the console's routes do.
type Mux interface {
	Handle(pattern string, handler http.Handler)
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}
