package api

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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

// decode reads exactly one JSON object from r's body into v with the
// API's strictness rules (see DecodeJSON). The request must say it is JSON:
// Content-Type application/json, with no charset or charset=utf-8. Bodies
// over MaxBody are TooLarge.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeLimit(w, r, v, MaxBody)
}

// decodeLimit is decode with a body limit of max bytes.
func decodeLimit(w http.ResponseWriter, r *http.Request, v any, max int64) error {
	if err := jsonContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	return DecodeJSON(http.MaxBytesReader(w, r.Body, max), v)
}

// jsonContentType returns an Invalid error unless ct is application/json,
// without parameters or with charset=utf-8 only. A missing Content-Type is
// refused too: a browser form (text/plain, form encodings) can then never
// reach a JSON route, whatever the route's authentication.
func jsonContentType(ct string) error {
	bad := errs.E(errs.Invalid, "Content-Type must be application/json")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return bad
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return bad
		}
	}
	return nil
}

// DecodeJSON decodes rd, which must hold exactly one JSON object, into v,
// which must point to a struct. It is the API's one JSON decoder, exported
// for fuzzing and for other front ends. It refuses, each with an Invalid
// error (a TooLarge one when rd fails with *http.MaxBytesError):
//
//   - an empty body, malformed JSON, invalid UTF-8, and anything after
//     the object;
//   - a body that is not an object;
//   - a member name used twice in one object, at any depth (it does not
//     let the last one win);
//   - a member that v does not have: names match the json tags exactly,
//     so "Email" is not "email";
//   - a value of the wrong type.
//
// Errors about one member name it with errs.Field, as its JSON path
// without array indices ("intervals.start").
//
// It is built on github.com/go-json-experiment/json, the implementation
// of encoding/json/v2, whose defaults refuse duplicate names and match
// names case-sensitively.
func DecodeJSON(rd io.Reader, v any) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		if maxErr, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return errs.E(errs.TooLarge, "request body must not exceed %d bytes", maxErr.Limit)
		}
		return errs.E(errs.Invalid, "the request body could not be read")
	}
	b = bytes.TrimLeft(b, " \t\r\n")
	switch {
	case len(b) == 0:
		return errs.E(errs.Invalid, "request body must not be empty")
	case b[0] != '{':
		return errs.E(errs.Invalid, "request body must be a JSON object")
	}
	dec := jsontext.NewDecoder(bytes.NewReader(b))
	err = jsonv2.UnmarshalDecode(dec, v, jsonv2.RejectUnknownMembers(true))
	if err == nil {
		if _, err := dec.ReadValue(); err != io.EOF {
			return errs.E(errs.Invalid, "request body must hold a single JSON object")
		}
		return nil
	}
	if se, ok := errors.AsType[*jsontext.SyntacticError](err); ok {
		if errors.Is(se.Err, jsontext.ErrDuplicateName) {
			name := fieldPath(se.JSONPointer)
			return errs.Field(errs.Invalid, name, "field %q appears more than once", name)
		}
		return errs.E(errs.Invalid, "request body is not valid JSON")
	}
	if se, ok := errors.AsType[*jsonv2.SemanticError](err); ok && se.JSONPointer != "" {
		name := fieldPath(se.JSONPointer)
		if errors.Is(se.Err, jsonv2.ErrUnknownName) {
			return errs.Field(errs.Invalid, name, "unknown field %q (names are case-sensitive)", name)
		}
		return errs.Field(errs.Invalid, name, "field %q has the wrong type or format", name)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errs.E(errs.Invalid, "request body is not valid JSON")
	}
	return errs.E(errs.Invalid, "request body must be a JSON object")
}

// fieldPath returns the object member names of p joined by dots, leaving
// out array indices: /intervals/0/start is "intervals.start".
func fieldPath(p jsontext.Pointer) string {
	var names []string
	for tok := range p.Tokens() {
		if tok != "" && strings.Trim(tok, "0123456789") == "" {
			continue // an array index
		}
		names = append(names, tok)
	}
	return strings.Join(names, ".")
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
