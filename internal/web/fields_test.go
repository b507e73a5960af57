package web_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/transparency"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// fieldError returns the error shown beside the form field with id on a
// page ("" when there is none).
func fieldError(body, id string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `-error">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

// formError returns the error shown above the form ("" for none).
func formError(body string) string {
	m := regexp.MustCompile(`id="form-error">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

// placed is one form submission and where its error must appear: beside
// the field with id field, or above the form when field is "".
type placed struct {
	name   string
	path   string
	form   url.Values
	status int
	field  string
	want   string // a fragment of the message
}

// check posts p with a fresh CSRF token from page and checks the status
// and that the error is beside p.field and nowhere else.
func (p placed) check(t *testing.T, c *browserless, page string) {
	t.Helper()
	form := url.Values{"csrf": {c.csrf(page)}}
	for k, v := range p.form {
		form[k] = v
	}
	resp, body := c.post(p.path, form)
	if resp.StatusCode != p.status {
		t.Errorf("%s: got %d, want %d\n%s", p.name, resp.StatusCode, p.status, body)
		return
	}
	var got string
	if p.field == "" {
		got = formError(body)
	} else {
		got = fieldError(body, p.field)
		if f := formError(body); f != "" {
			t.Errorf("%s: error above the form %q, want it only beside %s", p.name, f, p.field)
		}
	}
	if got == "" || !strings.Contains(strings.ToLower(got), strings.ToLower(p.want)) {
		where := "above the form"
		if p.field != "" {
			where = "beside " + p.field
		}
		t.Errorf("%s: %s got %q, want a message with %q", p.name, where, got, p.want)
	}
}

// TestPortalPlacesErrorsByField: each portal form shows a service error
// beside the form field its domain field maps to (whatever the error's
// code), and above the form when it names no field of the form.
func TestPortalPlacesErrorsByField(t *testing.T) {
	e := newEnv(t)
	const pw = "correct horse battery"
	u := e.client(t)
	u.signup("place@example.com", "+447911100701", pw)
	e.client(t).signup("taken@example.com", "+447911100702", pw)
	acct := e.accountID("place@example.com", pw)

	for _, p := range []placed{
		{"contact: wrong password (Unauthenticated)", "/account/contact", url.Values{"channel": {"email"}, "value": {"new@example.com"}, "password": {"not it"}},
			http.StatusUnauthorized, "email_password", "wrong password"},
		{"contact: malformed number (Invalid)", "/account/contact", url.Values{"channel": {"mobile"}, "value": {"12"}, "password": {pw}},
			http.StatusBadRequest, "new_mobile", "mobile number"},
		{"password: wrong current", "/account/password", url.Values{"current_password": {"not it"}, "new_password": {"a new long passphrase"}, "confirm": {"a new long passphrase"}},
			http.StatusUnauthorized, "current_password", "wrong password"},
		{"centre: details too long", "/privacy-centre", url.Values{"type": {store.RequestRectification}, "details": {strings.Repeat("x", privacy.MaxDetails+1)}},
			http.StatusBadRequest, "details", "at most"},
		{"centre: unknown type", "/privacy-centre", url.Values{"type": {"everything"}},
			http.StatusBadRequest, "type", "unknown request type"},
	} {
		page := "/account"
		if strings.HasPrefix(p.path, "/privacy-centre") {
			page = "/privacy-centre"
		}
		p.check(t, u, page)
	}
	// An address another account uses is answered like a free one (no
	// account enumeration): the same redirect to the code page.
	for _, value := range []string{"free@example.com", "taken@example.com"} {
		tok := u.csrf("/account")
		resp, body := u.post("/account/contact", url.Values{"csrf": {tok}, "channel": {"email"}, "value": {value}, "password": {pw}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account/contact/email?msg=contact-code-sent" {
			t.Fatalf("contact change to %s: got %d %q\n%s", value, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}

	// The identity proof of a request: wrong and malformed codes beside
	// their own field; a request no longer waiting (no field) above it.
	ctx := context.Background()
	r, err := e.srv.Privacy.Create(ctx, acct, store.RequestAccess, "")
	if err != nil {
		t.Fatal(err)
	}
	reqPage := "/privacy-centre/requests/" + r.ID
	emailCode, mobileCode := e.privacyCode("place@example.com"), e.privacyCode("+447911100701")
	wrong := "000000"
	if mobileCode == wrong {
		wrong = "111111"
	}
	for _, p := range []placed{
		{"proof: malformed email code", reqPage + "/verify", url.Values{"password": {pw}, "email_code": {"12"}, "mobile_code": {mobileCode}},
			http.StatusBadRequest, "email_code", "6 digits"},
		{"proof: wrong mobile code", reqPage + "/verify", url.Values{"password": {pw}, "email_code": {emailCode}, "mobile_code": {wrong}},
			http.StatusUnauthorized, "mobile_code", "wrong code"},
		{"proof: wrong password", reqPage + "/verify", url.Values{"password": {"not it"}, "email_code": {emailCode}, "mobile_code": {mobileCode}},
			http.StatusUnauthorized, "password", "wrong password"},
	} {
		p.check(t, u, reqPage)
	}
	// The right email code was spent with the wrong mobile code.
	if err := e.srv.Privacy.ResendCodes(ctx, acct, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Privacy.Verify(ctx, acct, r.ID, pw, e.privacyCode("place@example.com"), e.privacyCode("+447911100701")); err != nil {
		t.Fatal(err)
	}
	placed{"proof: already verified (no field)", reqPage + "/verify", url.Values{"password": {pw}, "email_code": {"123456"}, "mobile_code": {"123456"}},
		http.StatusConflict, "", "already verified"}.check(t, u, reqPage)

	// A bad reset token is beside the token field.
	anon := e.client(t)
	placed{"reset: unknown token (Gone)", "/reset", url.Values{"token": {"nnr_nosuchtoken"}, "password": {"a new long passphrase"}, "confirm": {"a new long passphrase"}},
		http.StatusGone, "token", "invalid or has expired"}.check(t, anon, "/reset")
}

// TestDeviceAddErrorField: the add-device endpoint answers the API's
// error body with the id of the form field the error belongs beside.
func TestDeviceAddErrorField(t *testing.T) {
	e := newEnv(t)
	u := e.client(t)
	u.signup("keys@example.com", "+447911100711", "correct horse battery")
	k, err := wgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := k.Public().String()
	add := func(form url.Values) (int, string, string) {
		t.Helper()
		tok := u.csrf("/devices/new")
		resp, body := u.post("/devices", form, "X-CSRF-Token", tok)
		var b struct {
			Error struct{ Code, Message, Field string }
		}
		if resp.StatusCode != http.StatusCreated {
			if err := json.Unmarshal([]byte(body), &b); err != nil {
				t.Fatalf("error body %q: %v", body, err)
			}
		}
		return resp.StatusCode, b.Error.Code, b.Error.Field
	}
	for _, c := range []struct {
		name   string
		form   url.Values
		status int
		field  string
	}{
		{"bad name", url.Values{"name": {""}, "public_key": {key}, "gateway": {e.gwID}}, http.StatusBadRequest, "name"},
		{"bad key", url.Values{"name": {"laptop"}, "public_key": {"not a key"}, "gateway": {e.gwID}}, http.StatusBadRequest, "public_key"},
		{"unknown gateway", url.Values{"name": {"laptop"}, "public_key": {key}, "gateway": {"gw_nope"}}, http.StatusNotFound, "gateway"},
		{"stray field", url.Values{"name": {"laptop"}, "public_key": {key}, "gateway": {e.gwID}, "private_key": {"x"}}, http.StatusBadRequest, ""},
		{"added", url.Values{"name": {"laptop"}, "public_key": {key}, "gateway": {e.gwID}}, http.StatusCreated, ""},
		{"key taken (Conflict)", url.Values{"name": {"phone"}, "public_key": {key}, "gateway": {e.gwID}}, http.StatusConflict, "public_key"},
		{"name taken in another case (Conflict)", url.Values{"name": {"LAPTOP"}, "public_key": {key2(t)}, "gateway": {e.gwID}}, http.StatusConflict, "name"},
	} {
		status, code, field := add(c.form)
		if status != c.status || field != c.field {
			t.Errorf("%s: got %d %s field %q, want %d field %q", c.name, status, code, field, c.status, c.field)
		}
	}
}

func key2(t *testing.T) string {
	k, err := wgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public().String()
}

// TestDeviceKeyRotation: POST /devices/ID/key takes only a public key and
// a gateway, replaces the device's key (the server then holds the new
// one) and answers the configuration's URL; other fields, a bad key and
// another account's device are refused.
func TestDeviceKeyRotation(t *testing.T) {
	e := newEnv(t)
	u := e.client(t)
	u.signup("rotate@example.com", "+447911100712", "correct horse battery")
	acct := e.accountID("rotate@example.com", "correct horse battery")
	d, err := e.srv.Devices.Add(t.Context(), acct, "laptop", key2(t))
	if err != nil {
		t.Fatal(err)
	}
	other := e.client(t)
	other.signup("other@example.com", "+447911100713", "correct horse battery")
	post := func(c *browserless, id string, form url.Values) (int, string) {
		t.Helper()
		tok := c.csrf("/devices")
		resp, body := c.post("/devices/"+id+"/key", form, "X-CSRF-Token", tok)
		return resp.StatusCode, body
	}
	fresh := key2(t)
	for _, c := range []struct {
		name   string
		who    *browserless
		form   url.Values
		status int
	}{
		{"stray field", u, url.Values{"public_key": {fresh}, "gateway": {e.gwID}, "private_key": {"x"}}, http.StatusBadRequest},
		{"a name is not taken here", u, url.Values{"public_key": {fresh}, "gateway": {e.gwID}, "name": {"x"}}, http.StatusBadRequest},
		{"bad key", u, url.Values{"public_key": {"not a key"}, "gateway": {e.gwID}}, http.StatusBadRequest},
		{"no gateway", u, url.Values{"public_key": {fresh}}, http.StatusBadRequest},
		{"another account's device", other, url.Values{"public_key": {fresh}, "gateway": {e.gwID}}, http.StatusNotFound},
	} {
		if status, body := post(c.who, d.ID, c.form); status != c.status {
			t.Errorf("%s: got %d, want %d\n%s", c.name, status, c.status, body)
		}
	}
	if got, _ := e.srv.Devices.Get(t.Context(), acct, d.ID); got.PublicKey != d.PublicKey {
		t.Fatalf("a refused rotation changed the key")
	}
	status, body := post(u, d.ID, url.Values{"public_key": {fresh}, "gateway": {e.gwID}})
	var r struct {
		ID, Name  string
		ConfigURL string `json:"config_url"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &r) != nil || r.ID != d.ID || r.Name != "laptop" ||
		r.ConfigURL != "/devices/"+d.ID+"/config?gateway="+e.gwID {
		t.Fatalf("rotation: got %d %s", status, body)
	}
	if got, _ := e.srv.Devices.Get(t.Context(), acct, d.ID); got.PublicKey != fresh {
		t.Errorf("after rotation the server holds %s, want %s", got.PublicKey, fresh)
	}
}

// TestConsolePlacesErrorsByField: the console's forms place service
// errors by field too; a request whose state does not allow an action is
// 409 above the forms, never 403 (which means the role may not act).
func TestConsolePlacesErrorsByField(t *testing.T) {
	e := newEnv(t)
	_, acct, req := consoleUser(t, e, "console-place@example.com", "+447911100721")
	e.addStaff("officer@place.example", staff.RolePrivacyOfficer)
	e.addStaff("legal@place.example", staff.RoleLegal)
	officer := e.client(t)
	officer.staffLogin("officer@place.example")
	legal := e.client(t)
	legal.staffLogin("legal@place.example")

	reqPage := "/console/requests/" + req
	long := strings.Repeat("x", privacy.MaxReason+1)
	for _, p := range []placed{
		{"extend: reason too long", reqPage + "/extend", url.Values{"months": {"1"}, "reason": {long}},
			http.StatusBadRequest, "extend_reason", "at most"},
		{"deny: reason too long", reqPage + "/deny", url.Values{"reason": {long}},
			http.StatusBadRequest, "deny_reason", "at most"},
		{"complete: note too long", reqPage + "/complete", url.Values{"note": {long}},
			http.StatusBadRequest, "note", "at most"},
	} {
		p.check(t, officer, reqPage)
	}
	// One month given; two more are refused by the service, beside
	// "months".
	if _, err := e.srv.Privacy.Extend(context.Background(), mustStaff(t, e, "officer@place.example"), req, 1, "many systems"); err != nil {
		t.Fatal(err)
	}
	placed{"extend: past two months", reqPage + "/extend", url.Values{"months": {"2"}, "reason": {"more"}},
		http.StatusBadRequest, "months", "at most"}.check(t, officer, reqPage)

	// A request whose identity is not proven cannot be completed: 409,
	// above the forms.
	pending, err := e.srv.Privacy.Create(context.Background(), acct, store.RequestAccess, "")
	if err != nil {
		t.Fatal(err)
	}
	pendingPage := "/console/requests/" + pending.ID
	placed{"complete: not verified (Conflict)", pendingPage + "/complete", url.Values{"note": {"done"}},
		http.StatusConflict, "", "not verified"}.check(t, officer, pendingPage)

	// Legal holds and the transparency report.
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	future := transparency.PeriodOf(time.Now().AddDate(1, 0, 0)).String()
	past := transparency.PeriodOf(time.Now().AddDate(0, -7, 0)).String()
	for _, p := range []placed{
		{"hold: unknown account", "/console/holds", url.Values{"account": {"acc_aaaaaaaaaaaaaaaaaaaaaaaaaa"}, "reason": {"court order"}},
			http.StatusNotFound, "account", "no such account"},
		{"hold: end in the past", "/console/holds", url.Values{"account": {acct}, "reason": {"court order"}, "until": {yesterday}},
			http.StatusBadRequest, "until", "future"},
		{"transparency: period not started", "/console/transparency", url.Values{"period": {future}},
			http.StatusBadRequest, "period", "not started"},
		{"transparency: canary too long", "/console/transparency", url.Values{"period": {past}, "canary": {strings.Repeat("c", 2001)}},
			http.StatusBadRequest, "canary", "canary"},
	} {
		page := "/console/holds"
		if strings.HasPrefix(p.path, "/console/transparency") {
			page = "/console/transparency"
		}
		p.check(t, legal, page)
	}
}

// mustStaff returns the principal of a staff member created by addStaff.
func mustStaff(t *testing.T, e *env, email string) staff.Principal {
	t.Helper()
	p, err := e.srv.Staff.Check(context.Background(), staff.Credentials{Email: email, Password: staffPassword})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
