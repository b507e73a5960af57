package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/httpedge"
)

// MaxBody is the largest request body the API accepts from users.
// Gateways' session reports may be up to MaxReportBody.
const (
	MaxBody       = 64 << 10
	MaxReportBody = 256 << 10
)

// writeError writes err as the JSON error body {"error": {"code",
// "message", "field"}} with httpedge's status (see httpedge.WriteError).
func writeError(w http.ResponseWriter, log *slog.Logger, err error) { httpedge.WriteError(w, log, err) }

// writeJSON writes v as an uncacheable JSON answer.
func writeJSON(w http.ResponseWriter, code int, v any) { httpedge.WriteJSON(w, code, v) }

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
				return errs.Field(errs.Invalid, typeErr.Field, "field %q has the wrong type", typeErr.Field)
			}
			return errs.E(errs.Invalid, "request body must be a JSON object")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.TrimPrefix(err.Error(), "json: unknown field ")
			return errs.Field(errs.Invalid, strings.Trim(name, `"`), "unknown field %s", name)
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

// required returns an Invalid error about the first empty field (its
// Field is the field's JSON name).
func required(fields ...[2]string) error {
	for _, f := range fields {
		if strings.TrimSpace(f[1]) == "" {
			return errs.Field(errs.Invalid, f[0], "field %q is required", f[0])
		}
	}
	return nil
}

func f(name, value string) [2]string { return [2]string{name, value} }
