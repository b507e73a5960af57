package httpedge

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
)

// ErrorBody is the JSON error body of the API (and of the portal's JSON
// endpoints):
//
//	{"error": {"code": "invalid", "message": "...", "field": "public_key"}}
//
// Code is an errs.Code; Message is safe to show; Field, present only when
// the error is about one input, is that input's JSON API name (errs.Field).
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of an ErrorBody.
type ErrorDetail struct {
	Code    errs.Code `json:"code"`
	Message string    `json:"message"`
	Field   string    `json:"field,omitempty"`
}

// Body returns err's JSON error body: its code, its client-safe message
// ("internal error" for internal errors) and its field.
func Body(err error) ErrorBody {
	return ErrorBody{Error: ErrorDetail{Code: errs.CodeOf(err), Message: errs.MessageOf(err), Field: errs.FieldOf(err)}}
}

// WriteError writes err as an ErrorBody with StatusOf(err). Internal
// errors are logged (the error only, never request data) and shown with a
// generic message. A RateLimited answer carries Retry-After.
func WriteError(w http.ResponseWriter, log *slog.Logger, err error) {
	if errs.CodeOf(err) == errs.Internal {
		log.Error("internal error", "err", err)
	}
	SetRetryAfter(w, err)
	WriteErrorBody(w, StatusOf(err), Body(err))
}

// SetRetryAfter sets the Retry-After header of a RateLimited answer for
// err: the wait err knows (RetryAfterOf), rounded up to whole seconds, or
// 60 seconds.
func SetRetryAfter(w http.ResponseWriter, err error) {
	if errs.CodeOf(err) != errs.RateLimited {
		return
	}
	secs := 60
	if d := RetryAfterOf(err); d > 0 {
		secs = int((d + time.Second - 1) / time.Second)
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
}

// WriteErrorBody writes b with status, setting Retry-After on 429 unless
// it is set already.
func WriteErrorBody(w http.ResponseWriter, status int, b ErrorBody) {
	if status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "60")
	}
	WriteJSON(w, status, b)
}

// WriteJSON writes v as an uncacheable JSON answer with status. A nil v
// writes no body.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}
