package server_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/breaches"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestPrivacyAPI drives the privacy routes over HTTP on each engine.
func TestPrivacyAPI(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			lim := httpedge.Limits{SignupPerHour: 1e6, SignupBurst: 1e4, LoginPerHour: 1e6, LoginBurst: 1e4,
				VerifyPerHour: 1e6, VerifyBurst: 1e4, ResetPerHour: 1e6, ResetBurst: 1e4}
			e := newEnv(t, b, &lim)
			_, tok := e.signup("dsr@example.com", "+447911100201")
			_, other := e.signup("other@example.com", "+447911100202")

			// Bad input.
			for _, tc := range []struct {
				name, method, path string
				body               any
				token              string
				status             int
			}{
				{"unknown type", "POST", "/api/v1/privacy/requests", map[string]string{"type": "forget-me-not"}, tok, 400},
				{"no type", "POST", "/api/v1/privacy/requests", map[string]string{}, tok, 400},
				{"unknown field", "POST", "/api/v1/privacy/requests", map[string]string{"type": "access", "fee": "10"}, tok, 400},
				{"no login", "POST", "/api/v1/privacy/requests", map[string]string{"type": "access"}, "", 401},
				{"malformed id", "GET", "/api/v1/privacy/requests/not-an-id", nil, tok, 400},
				{"unknown id", "GET", "/api/v1/privacy/requests/prq_aaaaaaaaaaaaaaaaaaaaaaaaaa", nil, tok, 404},
			} {
				t.Run(tc.name, func(t *testing.T) { e.with(t).want(tc.method, tc.path, tc.token, tc.body, tc.status) })
			}

			out := e.want("POST", "/api/v1/privacy/requests", tok, map[string]string{"type": "access"}, 201)
			for _, k := range []string{"id", "type", "status", "received_at", "due_at"} {
				if out[k] == nil || out[k] == "" {
					t.Fatalf("create answer lacks %q: %v", k, out)
				}
			}
			id := out["id"].(string)
			e.want("GET", "/api/v1/privacy/requests/"+id, other, nil, 404)
			list := e.want("GET", "/api/v1/privacy/requests", tok, nil, 200)
			if rs, _ := list["requests"].([]any); len(rs) != 1 {
				t.Fatalf("list: got %v, want one request", list)
			}
			ecode := codeRE.FindStringSubmatch(e.lastMessage("privacy-code", "dsr@example.com"))[1]
			mcode := codeRE.FindStringSubmatch(e.lastMessage("privacy-code", "+447911100201"))[1]
			e.want("POST", "/api/v1/privacy/requests/"+id+"/verify", tok,
				map[string]string{"password": "wrong password!", "email_code": ecode, "mobile_code": mcode}, 401)
			v := e.want("POST", "/api/v1/privacy/requests/"+id+"/verify", tok,
				map[string]string{"password": "correct horse battery", "email_code": ecode, "mobile_code": mcode}, 200)
			if v["status"] != "completed" {
				t.Fatalf("verify: got %v, want completed", v)
			}
			e.want("POST", "/api/v1/privacy/requests/"+id+"/export-token", other, nil, 404)
			xt := e.want("POST", "/api/v1/privacy/requests/"+id+"/export-token", tok, nil, 201)
			url, _ := xt["url"].(string)

			get := func(path, token string) (int, string, string) {
				req, _ := http.NewRequest("GET", e.url+path, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
			}
			if code, _, _ := get(url, other); code != 404 {
				t.Fatalf("export with another account's login: got %d, want 404", code)
			}
			code, ctype, body := get(url, tok)
			if code != 200 || !strings.HasPrefix(ctype, "application/json") || !strings.Contains(body, `"schema_version"`) ||
				!strings.Contains(body, "dsr@example.com") || !strings.Contains(body, `"policy_acceptances"`) && !strings.Contains(body, `"sections"`) {
				t.Fatalf("export: got %d %s %.200s", code, ctype, body)
			}
			if code, _, _ := get(url, tok); code != 410 {
				t.Fatalf("export link reused: got %d, want 410", code)
			}
			xt = e.want("POST", "/api/v1/privacy/requests/"+id+"/export-token", tok, nil, 201)
			code, ctype, body = get(strings.Replace(xt["url"].(string), "format=json", "format=html", 1), tok)
			if code != 200 || !strings.HasPrefix(ctype, "text/html") || !strings.Contains(body, "Your Nitronet data") {
				t.Fatalf("html export: got %d %s", code, ctype)
			}

			// The overdue metric is exported.
			if body := e.metrics(); !strings.Contains(body, "nitronet_privacy_requests_overdue 0") {
				t.Fatalf("metrics: want the overdue gauge at 0 in %.300s", body)
			}
			if body := e.metrics(); !strings.Contains(body, "nitronet_privacy_extension_notices_failing 0") {
				t.Fatalf("metrics: want the failing extension notices gauge at 0 in %.300s", body)
			}

			// Erasure over HTTP: confirmation is required.
			er := e.want("POST", "/api/v1/privacy/requests", tok, map[string]string{"type": "erasure"}, 201)
			eid := er["id"].(string)
			ecode = codeRE.FindStringSubmatch(e.lastMessage("privacy-code", "dsr@example.com"))[1]
			mcode = codeRE.FindStringSubmatch(e.lastMessage("privacy-code", "+447911100201"))[1]
			e.want("POST", "/api/v1/privacy/requests/"+eid+"/verify", tok,
				map[string]string{"password": "correct horse battery", "email_code": ecode, "mobile_code": mcode}, 200)
			e.want("POST", "/api/v1/privacy/requests/"+eid+"/confirm-erasure", tok, map[string]bool{"confirm": false}, 400)
			rep := e.want("POST", "/api/v1/privacy/requests/"+eid+"/confirm-erasure", tok, map[string]bool{"confirm": true}, 200)
			if rep["service_closed"] != true || rep["status"] != "completed" {
				t.Fatalf("erasure: got %v", rep)
			}
			e.want("GET", "/api/v1/me", tok, nil, 401)
			e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "dsr@example.com", "password": "correct horse battery"}, 401)
		})
	}
}

// TestOverdueMetricsCountOutsideRequestsAndBreaches: a request recorded
// from outside the app whose month has passed counts in
// nitronet_privacy_requests_overdue, and a breach whose authority was not
// notified within 72 hours in nitronet_breaches_overdue, until notified.
func TestOverdueMetricsCountOutsideRequestsAndBreaches(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b, nil)
			ctx := context.Background()
			if _, err := e.srv.Staff.Bootstrap(ctx, "dpo@staff.example", staff.RolePrivacyOfficer, "staff password 1"); err != nil {
				t.Fatal(err)
			}
			po, err := e.srv.Staff.Check(ctx, staff.Credentials{Email: "dpo@staff.example", Password: "staff password 1"})
			if err != nil {
				t.Fatal(err)
			}
			metric := func(name string) string {
				m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(e.metrics())
				if m == nil {
					t.Fatalf("no %s in the metrics", name)
				}
				return m[1]
			}
			if _, err := e.srv.Privacy.StaffAdd(ctx, po, privacy.Intake{Type: store.RequestAccess, Email: "letter@example.com",
				Channel: store.ChannelPost, ReceivedAt: time.Now().AddDate(0, -1, -2), Check: privacy.CheckLetter}); err != nil {
				t.Fatal(err)
			}
			if got := metric("nitronet_privacy_requests_overdue"); got != "1" {
				t.Fatalf("nitronet_privacy_requests_overdue: got %s, want 1", got)
			}
			br, err := e.srv.Breaches.Add(ctx, po, time.Now().Add(-73*time.Hour), "A database dump was left on a public bucket.")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.srv.Breaches.Add(ctx, po, time.Now().Add(-71*time.Hour), "A laptop was stolen."); err != nil {
				t.Fatal(err)
			}
			if got := metric("nitronet_breaches_overdue"); got != "1" {
				t.Fatalf("nitronet_breaches_overdue: got %s, want 1", got)
			}
			now := time.Now()
			if _, err := e.srv.Breaches.Update(ctx, po, br.ID, breaches.Update{AuthorityNotifiedAt: &now}); err != nil {
				t.Fatal(err)
			}
			if got := metric("nitronet_breaches_overdue"); got != "0" {
				t.Fatalf("nitronet_breaches_overdue after notifying: got %s, want 0", got)
			}
		})
	}
}
