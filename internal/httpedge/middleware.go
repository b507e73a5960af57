package httpedge

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
)

// statusWriter records the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets long-poll and streaming handlers flush through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// quietKey is the context key of the flag Quiet sets for AccessLog.
type quietKey struct{}

// Quiet wraps h so that AccessLog writes no line for its requests, for
// routes whose mere use should leave no trace, such as the password-strength
// check that runs as someone types.
func Quiet(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q, ok := r.Context().Value(quietKey{}).(*bool); ok {
			*q = true
		}
		h.ServeHTTP(w, r)
	})
}

// AccessLog logs one line per request with exactly four attributes: the
// method, the matched route pattern (never the raw path, which may hold
// ids or tokens), the status and the duration. Nothing else about the
// request is logged: no address, no header, no query, no body. Requests to
// handlers wrapped in Quiet are not logged at all.
func AccessLog(log *slog.Logger, clock func() time.Time, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := clock()
		sw := &statusWriter{ResponseWriter: w}
		quiet := new(bool)
		// The mux records the matched pattern on the request it serves.
		r = r.WithContext(context.WithValue(r.Context(), quietKey{}, quiet))
		next.ServeHTTP(sw, r)
		if *quiet {
			return
		}
		pattern := r.Pattern
		if pattern == "" {
			pattern = "unmatched"
		} else if _, rest, ok := strings.Cut(pattern, " "); ok {
			pattern = rest
		}
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		log.Info("http", "method", r.Method, "route", pattern, "status", sw.status,
			"duration_ms", clock().Sub(start).Milliseconds())
	})
}

// BaselineHeaders sets restrictive security headers on every response,
// including those net/http's router writes itself (its redirects for
// unclean paths), before any handler runs. Handlers that serve pages (the
// portal) replace the Content-Security-Policy with their own.
func BaselineHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// Recover turns a handler panic into a 500 with a generic JSON error body.
// The panic value is not logged (it may hold request data), only the
// route pattern. http.ErrAbortHandler is re-raised, as net/http expects.
func Recover(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("handler panic", "route", r.Pattern)
				WriteErrorBody(w, http.StatusInternalServerError, Body(errs.E(errs.Internal, "internal error")))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
