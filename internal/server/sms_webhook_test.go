package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// smsListener is a real SMS webhook endpoint: it records every message
// POSTed to it.
type smsListener struct {
	mu   sync.Mutex
	msgs []struct{ To, Body string }
	// drain, if set, delivers the outbound queue's due jobs; last calls
	// it before each look, since services only queue their messages.
	drain func()
}

func (l *smsListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m struct {
		To   string `json:"to"`
		Body string `json:"body"`
	}
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	l.mu.Lock()
	l.msgs = append(l.msgs, struct{ To, Body string }{m.To, m.Body})
	l.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// last returns the newest message to to whose body holds want, waiting
// up to a few seconds for it.
func (l *smsListener) last(t *testing.T, to, want string) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if l.drain != nil {
			l.drain()
		}
		l.mu.Lock()
		for i := len(l.msgs) - 1; i >= 0; i-- {
			if l.msgs[i].To == to && strings.Contains(l.msgs[i].Body, want) {
				l.mu.Unlock()
				return l.msgs[i].Body
			}
		}
		n := len(l.msgs)
		l.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no SMS to %s holding %q among %d received", to, want, n)
		}
	}
}

func (l *smsListener) code(t *testing.T, to string) string {
	t.Helper()
	m := codeRE.FindStringSubmatch(l.last(t, to, "code"))
	if m == nil {
		t.Fatalf("no code in the SMS to %s", to)
	}
	return m[1]
}

// TestSMSServiceNoticesThroughWebhook: with an SMS webhook configured (so
// the processor guard stands in front of it), the notice to the old number
// after a mobile change and the erasure notice reach a real webhook
// listener; before, the guard refused both as notices outside the SMS
// gateway's scope, and tests that used the outbox did not see it.
func TestSMSServiceNoticesThroughWebhook(t *testing.T) {
	sms := &smsListener{}
	hook := httptest.NewServer(sms)
	t.Cleanup(hook.Close)
	e := newEnvWith(t, storetest.Backends()[0], nil, func(c *config.Settings) { c.SMSWebhook = hook.URL })
	sms.drain = e.drain

	const email, oldMobile, newMobile = "hook@example.com", "+447911100901", "+447911100902"
	e.want("POST", "/api/v1/accounts", "", map[string]string{"email": email, "mobile": oldMobile, "password": "correct horse battery"}, 201)
	tok := e.want("POST", "/api/v1/sessions", "", map[string]string{"email": email, "password": "correct horse battery"}, 201)["token"].(string)
	e.want("POST", "/api/v1/me/verify", tok, map[string]string{"channel": "email", "code": e.code(email)}, 200)
	e.want("POST", "/api/v1/me/verify", tok, map[string]string{"channel": "mobile", "code": sms.code(t, oldMobile)}, 200)

	// A mobile change tells the old number.
	e.want("POST", "/api/v1/me/contact", tok, map[string]string{"channel": "mobile", "value": newMobile, "password": "correct horse battery"}, 202)
	e.want("POST", "/api/v1/me/contact/verify", tok, map[string]string{"channel": "mobile", "code": sms.code(t, newMobile)}, 200)
	if body := sms.last(t, oldMobile, "was changed"); strings.Contains(body, newMobile) {
		t.Errorf("the notice to the old number quotes the new one: %q", body)
	}

	// An erasure notice reaches the (new, verified) number.
	er := e.want("POST", "/api/v1/privacy/requests", tok, map[string]string{"type": "erasure"}, 201)["id"].(string)
	ecode := codeRE.FindStringSubmatch(e.lastMessage("privacy-code", email))[1]
	e.want("POST", "/api/v1/privacy/requests/"+er+"/verify", tok,
		map[string]string{"password": "correct horse battery", "email_code": ecode, "mobile_code": sms.code(t, newMobile)}, 200)
	e.want("POST", "/api/v1/privacy/requests/"+er+"/confirm-erasure", tok, map[string]bool{"confirm": true}, 200)
	if body := sms.last(t, newMobile, "being erased"); !strings.Contains(body, er) {
		t.Errorf("the erasure SMS %q does not name the request %s", body, er)
	}
	if logs := e.logs.String(); strings.Contains(logs, "outside processor scope") {
		t.Errorf("the guard refused a transfer:\n%s", logs)
	}
}

// TestSignupAcceptsCurrentPolicy: an account created through the API has
// accepted the current version of each policy document, so nothing is
// pending; the portal's sign-up form links to the policy.
func TestSignupAcceptsCurrentPolicy(t *testing.T) {
	e := newEnv(t, storetest.Backends()[0], nil)
	_, tok := e.signup("accepts@example.com", "+447911100911")
	current := e.want("GET", "/api/v1/policy", "", nil, 200)
	me := e.want("GET", "/api/v1/me/policy", tok, nil, 200)
	if p, _ := me["pending"].([]any); len(p) != 0 {
		t.Fatalf("pending after sign-up: %v, want none", p)
	}
	docs, _ := current["documents"].([]any)
	accepted, _ := me["accepted"].([]any)
	if len(docs) == 0 || len(accepted) != len(docs) {
		t.Fatalf("accepted %v, want each current document %v", accepted, docs)
	}
	for _, d := range docs {
		id := d.(map[string]any)["id"]
		found := false
		for _, a := range accepted {
			found = found || a.(map[string]any)["document_id"] == id
		}
		if !found {
			t.Errorf("current document %v not accepted at sign-up: %v", id, accepted)
		}
	}
	resp, err := http.Get(e.url + "/signup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(page), `href="/privacy"`) {
		t.Errorf("the sign-up form does not link to the policy")
	}
}

// TestInboxDelete: a user deletes an inbox message through the API; it is
// gone from the list and the export; another account cannot delete it,
// and a second delete is 404.
func TestInboxDelete(t *testing.T) {
	e := newEnv(t, storetest.Backends()[0], nil)
	idA, tokA := e.signup("del-a@example.com", "+447911100921")
	_, tokB := e.signup("del-b@example.com", "+447911100922")
	const secret = "Deletable notice text 7f3e9a"
	if err := e.srv.Inbox.Post(t.Context(), idA, "announcement", "Subject 7f3e9a", secret); err != nil {
		t.Fatal(err)
	}
	var id string
	for _, m := range e.want("GET", "/api/v1/me/inbox", tokA, nil, 200)["messages"].([]any) {
		if m.(map[string]any)["body"] == secret {
			id = m.(map[string]any)["id"].(string)
		}
	}
	if id == "" {
		t.Fatal("the message is not in the inbox")
	}
	e.want("DELETE", "/api/v1/me/inbox/"+id, tokB, nil, 404)
	e.want("DELETE", "/api/v1/me/inbox/"+id, "", nil, 401)
	e.want("DELETE", "/api/v1/me/inbox/"+id, tokA, nil, 204)
	e.want("DELETE", "/api/v1/me/inbox/"+id, tokA, nil, 404)
	box := e.want("GET", "/api/v1/me/inbox", tokA, nil, 200)
	for _, m := range box["messages"].([]any) {
		if m.(map[string]any)["id"] == id {
			t.Fatalf("the deleted message is still listed: %v", box)
		}
	}
	_, data, err := e.srv.Inbox.ExportSection(t.Context(), idA)
	if err != nil || strings.Contains(fmt.Sprint(data), secret) {
		t.Fatalf("export after deletion: %v, %v", data, err)
	}
}
