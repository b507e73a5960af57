package errs_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nitronet/nitronet/internal/errs"
)

func TestField(t *testing.T) {
	e := errs.Field(errs.Invalid, "public_key", "public_key must be %d characters", 44)
	if e.Code != errs.Invalid || e.Field != "public_key" || e.Message != "public_key must be 44 characters" {
		t.Fatalf("got %+v", e)
	}
	wrapped := fmt.Errorf("add device: %w", e)
	if got := errs.FieldOf(wrapped); got != "public_key" {
		t.Errorf("FieldOf through a wrap = %q, want public_key", got)
	}
	if got := errs.FieldOf(errs.E(errs.Invalid, "no field")); got != "" {
		t.Errorf("FieldOf without a field = %q", got)
	}
	if got := errs.FieldOf(&errs.Error{Code: errs.Internal, Message: "x", Field: "secret_thing"}); got != "" {
		t.Errorf("FieldOf of an internal error = %q, want none", got)
	}
	if got := errs.FieldOf(errors.New("plain")); got != "" {
		t.Errorf("FieldOf of a plain error = %q", got)
	}
	if got := errs.FieldOf(nil); got != "" {
		t.Errorf("FieldOf(nil) = %q", got)
	}
}

func TestWithField(t *testing.T) {
	cause := errors.New("cause")
	orig := &errs.Error{Code: errs.Unauthenticated, Message: "wrong password", Field: "password", Err: cause}
	got := errs.WithField(fmt.Errorf("check: %w", orig), "current_password")
	if errs.FieldOf(got) != "current_password" || errs.CodeOf(got) != errs.Unauthenticated ||
		errs.MessageOf(got) != "wrong password" || !errors.Is(got, cause) {
		t.Fatalf("WithField = %#v", got)
	}
	if orig.Field != "password" {
		t.Errorf("WithField changed the original: %q", orig.Field)
	}
	plain := errors.New("disk on fire")
	if errs.WithField(plain, "email") != plain {
		t.Errorf("WithField changed a non-domain error")
	}
	internal := errs.E(errs.Internal, "x")
	if errs.WithField(internal, "email") != error(internal) {
		t.Errorf("WithField changed an internal error")
	}
	if errs.WithField(nil, "email") != nil {
		t.Errorf("WithField(nil) is not nil")
	}
}
