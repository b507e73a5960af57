package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nitronet/nitronet/internal/client"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/httpedge"
)

// TestAPIErrorField: the client decodes the field of the API's error body
// (written here by the API's own writer) and exposes it on APIError and
// through errs.FieldOf, with the code and message.
func TestAPIErrorField(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /field", func(w http.ResponseWriter, r *http.Request) {
		httpedge.WriteError(w, log, errs.Field(errs.Invalid, "mobile_code", "mobile_code is required"))
	})
	mux.HandleFunc("POST /nofield", func(w http.ResponseWriter, r *http.Request) {
		httpedge.WriteError(w, log, errs.E(errs.Unauthenticated, "invalid email or password"))
	})
	mux.HandleFunc("GET /plain", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := client.New(srv.URL, "", srv.Client())
	ctx := context.Background()

	err := c.Do(ctx, "POST", "/field", map[string]string{}, nil)
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %T %v, want *APIError", err, err)
	}
	if ae.Status != 400 || ae.Code != "invalid" || ae.Field != "mobile_code" || ae.Message != "mobile_code is required" {
		t.Errorf("got %+v", ae)
	}
	if errs.FieldOf(err) != "mobile_code" || !errs.Is(err, errs.Invalid) {
		t.Errorf("errs.FieldOf = %q, CodeOf = %q; want mobile_code, invalid", errs.FieldOf(err), errs.CodeOf(err))
	}

	err = c.Do(ctx, "POST", "/nofield", map[string]string{}, nil)
	if !errors.As(err, &ae) || ae.Field != "" || ae.Code != "unauthenticated" || errs.FieldOf(err) != "" {
		t.Errorf("no field: got %+v", err)
	}

	err = c.Do(ctx, "GET", "/plain", nil, nil)
	if !errors.As(err, &ae) || ae.Code != "http" || ae.Status != http.StatusBadGateway {
		t.Fatalf("plain error: got %v", err)
	}
	if errs.CodeOf(err) != errs.Internal || errs.FieldOf(err) != "" {
		t.Errorf("plain error: CodeOf %q, FieldOf %q; want internal and none", errs.CodeOf(err), errs.FieldOf(err))
	}
}
