// Package errs holds Nitronet's single domain error type.
//
// Every layer returns *Error (possibly wrapped) for failures that a caller
// should see; anything else is treated as an internal error. The mapping from
// Code to HTTP status lives in exactly one place, package httpedge.
//
// An error about one input names it in Field, by the input's name in the
// JSON API (the public contract): "email", "public_key", "email_code" and
// so on; docs/api-errors.md lists them. Front ends place an error by its
// field, never by its message text.
package errs

import (
	"errors"
	"fmt"
)

// Code classifies a domain error. The zero value is Internal.
type Code string

// The codes a caller may see. Their string values appear in JSON error bodies.
const (
	Internal        Code = "internal"
	Invalid         Code = "invalid"             // malformed or unacceptable input
	Unauthenticated Code = "unauthenticated"     // bad credentials, token or code
	Forbidden       Code = "forbidden"           // authenticated but not allowed (staff roles)
	NotFound        Code = "not_found"           // absent, or not the caller's
	Conflict        Code = "conflict"            // duplicate or state conflict
	RateLimited     Code = "rate_limited"        // too many attempts
	TooLarge        Code = "too_large"           // request body over the limit
	Unavailable     Code = "unavailable"         // temporarily unable to serve
	Gone            Code = "gone"                // expired or already consumed
	Precondition    Code = "failed_precondition" // e.g. contacts not verified yet
)

// Error is a domain error with a code and a message that is safe to show to
// the client. Message must never contain secrets or personal data.
type Error struct {
	Code    Code
	Message string
	// Field is the input the error is about, by its JSON API name (for
	// example "email" or "public_key"), or "" when it is about no single
	// input. It is safe to show, like Message.
	Field string
	// Fields holds every error of a form's inputs when a service checked
	// them all at once (see Join); the error's own Code, Message and Field
	// are those of the first. It is nil for an error about one input.
	Fields []*Error
	Err    error // optional cause, never shown to clients
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// E returns a new *Error with the given code and formatted message.
func E(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Field returns a new *Error about the input named field (its JSON API
// name), with the given code and formatted message.
func Field(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Field: field}
}

// WithField returns err with its domain error's Field set to field: a copy
// of the first *Error in err's chain (its code, message and cause kept),
// so the original is not changed. A service uses it to name the input a
// shared check was about, for example the "current_password" a password
// check rejected. Errors without a domain error, internal errors and nil
// are returned unchanged.
func WithField(err error, field string) error {
	var e *Error
	if !errors.As(err, &e) || e.Code == Internal {
		return err
	}
	c := *e
	c.Field = field
	return &c
}

// Wrap returns a new *Error with code and message that wraps cause.
func Wrap(code Code, cause error, msg string) *Error {
	return &Error{Code: code, Message: msg, Err: cause}
}

// CodeOf returns the Code of the first *Error in err's chain, Internal if
// there is none, and "" if err is nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// MessageOf returns the client-safe message of the first *Error in err's
// chain, or a generic text for internal errors.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != Internal {
		return e.Message
	}
	return "internal error"
}

// FieldOf returns the Field of the first *Error in err's chain: the JSON
// API name of the input err is about, or "" for none and for internal
// errors.
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != Internal {
		return e.Field
	}
	return ""
}

// Join returns one error for the checks of several inputs, so a service
// can report every bad input of a form at once: nil when every error is
// nil, the error itself when only one is not, and the first non-domain
// (internal) error as it is, if any. Otherwise it returns a new *Error
// with the first error's code, message and field whose Fields lists the
// domain errors in the order given (each joined error's own Fields are
// flattened in).
func Join(list ...error) error {
	var all []*Error
	var first error
	for _, err := range list {
		if err == nil {
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Code == Internal {
			return err
		}
		if first == nil {
			first = err
		}
		all = append(all, All(err)...)
	}
	if len(all) <= 1 {
		return first
	}
	return &Error{Code: all[0].Code, Message: all[0].Message, Field: all[0].Field, Fields: all}
}

// All returns the domain errors err stands for: the Fields of a joined
// error (Join), or else err's own domain error; nil for nil and for
// internal errors.
func All(err error) []*Error {
	var e *Error
	if !errors.As(err, &e) || e.Code == Internal {
		return nil
	}
	if len(e.Fields) > 0 {
		return append([]*Error(nil), e.Fields...)
	}
	return []*Error{e}
}

// Is reports whether err carries the given code.
func Is(err error, code Code) bool { return err != nil && CodeOf(err) == code }
