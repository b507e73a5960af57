package notify

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nitronet/nitronet/internal/errs"
)

// hook is an httptest server that records webhook requests.
type hook struct {
	srv    *httptest.Server
	status int

	mu   sync.Mutex
	reqs []hookReq
}

type hookReq struct {
	method, path, contentType, auth string
	body                            []byte
}

func startHook(t *testing.T, status int) *hook {
	t.Helper()
	h := &hook{status: status}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, hookReq{
			method: r.Method, path: r.URL.Path,
			contentType: r.Header.Get("Content-Type"), auth: r.Header.Get("Authorization"),
			body: b,
		})
		h.mu.Unlock()
		w.WriteHeader(h.status)
		io.WriteString(w, `{"error":"echo +447911123456"}`)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) requests() []hookReq {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookReq(nil), h.reqs...)
}

func testSMS() Message {
	return Message{Channel: SMS, To: "+447911123456", Body: "Nitronet code: 483920", Kind: "verify-code"}
}

func TestWebhookSend(t *testing.T) {
	tests := []struct {
		name     string
		token    string
		status   int
		wantAuth string
		wantErr  bool
	}{
		{"ok with token", "tok-123", http.StatusOK, "Bearer tok-123", false},
		{"accepted without token", "", http.StatusAccepted, "", false},
		{"no content", "tok", http.StatusNoContent, "Bearer tok", false},
		{"bad request", "tok", http.StatusBadRequest, "Bearer tok", true},
		{"unauthorized", "tok", http.StatusUnauthorized, "Bearer tok", true},
		{"server error", "tok", http.StatusInternalServerError, "Bearer tok", true},
		{"redirect not followed to success", "tok", http.StatusMultipleChoices, "Bearer tok", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := startHook(t, tc.status)
			w, err := NewWebhook(WebhookConfig{URL: h.srv.URL + "/sms?key=query-secret", Token: tc.token, Client: h.srv.Client()})
			if err != nil {
				t.Fatalf("NewWebhook: %v", err)
			}
			m := testSMS()
			err = w.Send(t.Context(), m)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Send: got nil error, want one for status %d", tc.status)
				}
				if c := errs.CodeOf(err); c != errs.Unavailable {
					t.Fatalf("error code: got %q, want %q", c, errs.Unavailable)
				}
				for _, leak := range []string{m.To, "447911123456", "483920", "query-secret", tc.token} {
					if leak != "" && strings.Contains(err.Error(), leak) {
						t.Fatalf("error %q contains %q", err, leak)
					}
				}
			} else if err != nil {
				t.Fatalf("Send: %v", err)
			}

			reqs := h.requests()
			if len(reqs) != 1 {
				t.Fatalf("requests: got %d, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != http.MethodPost || r.path != "/sms" {
				t.Fatalf("request: got %s %s, want POST /sms", r.method, r.path)
			}
			if r.contentType != "application/json" {
				t.Fatalf("Content-Type: got %q, want %q", r.contentType, "application/json")
			}
			if r.auth != tc.wantAuth {
				t.Fatalf("Authorization: got %q, want %q", r.auth, tc.wantAuth)
			}
			var got map[string]any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("body %q: %v", r.body, err)
			}
			want := map[string]any{"to": m.To, "body": m.Body}
			if len(got) != len(want) || got["to"] != want["to"] || got["body"] != want["body"] {
				t.Fatalf("JSON body: got %v, want %v", got, want)
			}
		})
	}
}

func TestWebhookUnreachable(t *testing.T) {
	h := startHook(t, http.StatusOK)
	url := h.srv.URL + "/sms?key=query-secret"
	w, err := NewWebhook(WebhookConfig{URL: url, Client: h.srv.Client()})
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	h.srv.Close()
	err = w.Send(t.Context(), testSMS())
	if c := errs.CodeOf(err); c != errs.Unavailable {
		t.Fatalf("Send to closed server: got %v (code %q), want code %q", err, c, errs.Unavailable)
	}
	if strings.Contains(err.Error(), "query-secret") {
		t.Fatalf("error %q contains the URL's secret", err)
	}
}

func TestWebhookRejectsBadMessages(t *testing.T) {
	h := startHook(t, http.StatusOK)
	w, err := NewWebhook(WebhookConfig{URL: h.srv.URL, Client: h.srv.Client()})
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	tests := []struct {
		name string
		edit func(*Message)
	}{
		{"email channel", func(m *Message) { m.Channel = Email }},
		{"no recipient", func(m *Message) { m.To = "" }},
		{"control char", func(m *Message) { m.To = "+44\n7911" }},
		{"bad kind", func(m *Message) { m.Kind = "../etc" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := testSMS()
			tc.edit(&m)
			if c := errs.CodeOf(w.Send(t.Context(), m)); c != errs.Invalid {
				t.Fatalf("Send: got code %q, want %q", c, errs.Invalid)
			}
		})
	}
	if n := len(h.requests()); n != 0 {
		t.Fatalf("requests: got %d, want 0", n)
	}
}

func TestNewWebhookConfig(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		token   string
		wantErr bool
	}{
		{"https", "https://sms.example/send", "", false},
		{"http loopback v4", "http://127.0.0.1:8080/send", "", false},
		{"http loopback v6", "http://[::1]:8080/send", "", false},
		{"http localhost", "http://localhost:8080/send", "", false},
		{"http remote", "http://sms.example/send", "", true},
		{"other scheme", "ftp://sms.example/send", "", true},
		{"relative", "/send", "", true},
		{"empty", "", "", true},
		{"unparsable", "https://sms.example/%zz", "", true},
		{"token with newline", "https://sms.example/send", "tok\r\nX-Evil: 1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWebhook(WebhookConfig{URL: tc.url, Token: tc.token})
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Fatalf("NewWebhook(%q): got error %v, want error %v", tc.url, err, tc.wantErr)
			}
			if err == nil && w.client == nil {
				t.Fatalf("NewWebhook(%q): got nil client, want a default one", tc.url)
			}
		})
	}
}
