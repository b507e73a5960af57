// Package httpedge holds what Nitronet's HTTP front ends (the JSON API in
// package api, the portal and console in package web) share at the edge:
// the one mapping from a domain error code to an HTTP status, the JSON
// error body, the rate limiters and the keys they count by, and the
// middleware every response passes through (access log, baseline security
// headers, panic recovery).
//
// Privacy rules enforced here: the access log records only the method, the
// route pattern, the status and the duration. Client addresses are used
// only as rate-limit keys, which the limiter hashes before holding them in
// memory; they are never logged or stored.
package httpedge

import (
	"net/http"

	"github.com/nitronet/nitronet/internal/errs"
)

// Status maps a domain error code to its HTTP status. It is the only place
// in the program that does so: every front end answers with it.
func Status(c errs.Code) int {
	switch c {
	case "":
		return http.StatusOK
	case errs.Invalid:
		return http.StatusBadRequest
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.Forbidden, errs.Precondition:
		return http.StatusForbidden
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.Gone:
		return http.StatusGone
	case errs.TooLarge:
		return http.StatusRequestEntityTooLarge
	case errs.RateLimited:
		return http.StatusTooManyRequests
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// StatusOf returns the HTTP status for err: Status of its code (200 for
// nil, 500 for an error without a domain code).
func StatusOf(err error) int { return Status(errs.CodeOf(err)) }
