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

func TestJoin(t *testing.T) {
	if err := errs.Join(nil, nil); err != nil {
		t.Fatalf("Join of nils = %v, want nil", err)
	}
	one := errs.Field(errs.Invalid, "email", "enter an email address")
	if err := errs.Join(nil, one, nil); err != one {
		t.Fatalf("Join of one error = %v, want it unchanged", err)
	}
	internal := errors.New("disk on fire")
	if err := errs.Join(one, internal); err != internal {
		t.Fatalf("Join with an internal error = %v, want the internal error", err)
	}
	two := errs.Field(errs.Invalid, "mobile", "enter a mobile number")
	three := errs.Field(errs.Invalid, "password", "password too short")
	err := errs.Join(one, fmt.Errorf("wrapped: %w", errs.Join(two, three)))
	if errs.CodeOf(err) != errs.Invalid || errs.FieldOf(err) != "email" || errs.MessageOf(err) != "enter an email address" {
		t.Errorf("joined error: code %q field %q message %q, want the first error's", errs.CodeOf(err), errs.FieldOf(err), errs.MessageOf(err))
	}
	var got []string
	for _, e := range errs.All(err) {
		got = append(got, e.Field)
	}
	if fmt.Sprint(got) != "[email mobile password]" {
		t.Errorf("All = %v, want [email mobile password] in order", got)
	}
	if all := errs.All(one); len(all) != 1 || all[0] != one {
		t.Errorf("All of a single error = %v", all)
	}
	if all := errs.All(internal); all != nil {
		t.Errorf("All of an internal error = %v, want nil", all)
	}
}
