package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/nitronet/nitronet/internal/errs"
)

// MaxBody is the largest request body the API accepts from users.
// Gateways' session reports may be up to MaxReportBody.
const (
	MaxBody       = 64 << 10
	MaxReportBody = 256 << 10
)

// status maps a domain error code to its HTTP status. This is the only
// place in the program that does so.
func status(c errs.Code) int {
	switch c {
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

// StatusOf returns the HTTP status for err (for other HTTP front ends in
// this program, such as the web portal, so the mapping stays in one place).
func StatusOf(err error) int { return status(errs.CodeOf(err)) }

type errorBody struct {
	Error struct {
		Code    errs.Code `json:"code"`
		Message string    `json:"message"`
	} `json:"error"`
}

// writeError writes err as {"error": {"code", "message"}}. Internal errors
// are logged (without request data) and shown as a generic message.
func writeError(w http.ResponseWriter, log *slog.Logger, err error) {
	code := errs.CodeOf(err)
	if code == errs.Internal {
		log.Error("internal error", "err", err)
	}
	var b errorBody
	b.Error.Code = code
	b.Error.Message = errs.MessageOf(err)
	if code == errs.RateLimited {
		w.Header().Set("Retry-After", "60")
	}
	writeJSON(w, status(code), b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// decode reads exactly one JSON object from r's body into v. It rejects
// bodies over MaxBody, unknown fields, trailing data and malformed JSON,
// each with a clear Invalid (or TooLarge) error.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeLimit(w, r, v, MaxBody)
}

// decodeLimit is decode with a body limit of max bytes.
func decodeLimit(w http.ResponseWriter, r *http.Request, v any, max int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errs.E(errs.Invalid, "Content-Type must be application/json")
	}
	body := http.MaxBytesReader(w, r.Body, max)
	return DecodeJSON(body, v)
}

// DecodeJSON decodes exactly one JSON value from rd into v with the API's
// strictness rules. It is exported for fuzzing and for other front ends.
func DecodeJSON(rd io.Reader, v any) error {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxErr *http.MaxBytesError
		var synErr *json.SyntaxError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &maxErr):
			return errs.E(errs.TooLarge, "request body must not exceed %d bytes", maxErr.Limit)
		case errors.Is(err, io.EOF):
			return errs.E(errs.Invalid, "request body must not be empty")
		case errors.As(err, &synErr), errors.Is(err, io.ErrUnexpectedEOF):
			return errs.E(errs.Invalid, "request body is not valid JSON")
		case errors.As(err, &typeErr):
			if typeErr.Field != "" {
				return errs.E(errs.Invalid, "field %q has the wrong type", typeErr.Field)
			}
			return errs.E(errs.Invalid, "request body must be a JSON object")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return errs.E(errs.Invalid, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			return errs.E(errs.Invalid, "request body is not valid JSON")
		}
	}
	if dec.More() {
		return errs.E(errs.Invalid, "request body must hold a single JSON object")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return errs.E(errs.TooLarge, "request body must not exceed %d bytes", maxErr.Limit)
		}
		return errs.E(errs.Invalid, "request body must hold a single JSON object")
	}
	return nil
}

// required returns an Invalid error naming the first empty field.
func required(fields ...[2]string) error {
	for _, f := range fields {
		if strings.TrimSpace(f[1]) == "" {
			return errs.E(errs.Invalid, "field %q is required", f[0])
		}
	}
	return nil
}

func f(name, value string) [2]string { return [2]string{name, value} }
