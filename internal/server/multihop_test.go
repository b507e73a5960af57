package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestMultihopRelayConfig: an entry gateway's start-up report of relay
// ports is validated, recorded and listed, and a device configuration
// with entry and exit names the exit's key at the entry's relay port for
// that exit; an entry without a relay to the exit, or entry = exit, is
// refused naming the field.
func TestMultihopRelayConfig(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, b, nil)
			ctx := context.Background()
			_, tok := e.signup("relay@example.com", "+447911100702")
			devID := e.want("POST", "/api/v1/devices", tok, map[string]string{"name": "phone", "public_key": newKey(t)}, 201)["id"].(string)
			enroll := func(region, endpoint string) (cred, id, pub string) {
				_, et, err := e.srv.Gateways.Add(ctx, staff.System(), region, endpoint)
				if err != nil {
					t.Fatal(err)
				}
				pub = newKey(t)
				r := e.want("POST", "/api/v1/gateway/enroll", "", map[string]string{"token": et, "public_key": pub}, 201)
				return r["credential"].(string), r["id"].(string), pub
			}
			entryCred, entryID, _ := enroll("entry-1", "198.18.0.1:51820")
			_, exitID, exitPub := enroll("exit-1", "198.18.0.2:51820")
			_, otherID, _ := enroll("other-1", "198.18.0.3:51820")

			const hello = "/api/v1/gateway/hello"
			for _, bad := range [][]map[string]any{
				{{"exit": exitID, "port": 0}},
				{{"exit": exitID, "port": 51820}}, // the listen port
				{{"exit": entryID, "port": 51830}},
				{{"exit": "", "port": 51830}},
				{{"exit": exitID, "port": 51830}, {"exit": otherID, "port": 51830}},
			} {
				e.want("POST", hello, entryCred, map[string]any{"listen_port": 51820, "relays": bad}, 400)
			}
			r := e.want("POST", hello, entryCred, map[string]any{"listen_port": 51820, "relays": []map[string]any{{"exit": exitID, "port": 51830}}}, 200)
			if fmt.Sprint(r["changed"]) != "[relays]" || fmt.Sprint(r["relays"]) != fmt.Sprintf("[map[exit:%s port:51830]]", exitID) {
				t.Fatalf("report of a relay: got %v, want relays changed", r)
			}
			if gws := e.want("GET", "/api/v1/gateways", tok, nil, 200); !strings.Contains(fmt.Sprint(gws), fmt.Sprintf("relays:[map[exit:%s port:51830]]", exitID)) {
				t.Errorf("gateway list: got %v, want the entry's relay", gws)
			}

			get := func(query string) (int, string) {
				req, _ := http.NewRequest("GET", e.url+"/api/v1/devices/"+devID+"/wireguard?"+query, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(body)
			}
			for _, q := range []string{"entry=entry-1&exit=exit-1", "entry=" + entryID + "&gateway=" + exitID} {
				code, conf := get(q)
				if code != 200 || !strings.Contains(conf, "\nEndpoint = 198.18.0.1:51830\n") || !strings.Contains(conf, "\nPublicKey = "+exitPub+"\n") {
					t.Errorf("multihop configuration %s: got %d %q, want the exit's key at the entry's relay port", q, code, conf)
				}
			}
			for q, field := range map[string]string{
				"entry=entry-1&exit=other-1": `"field":"entry"`,
				"entry=entry-1&exit=entry-1": `"field":"exit"`,
				"entry=entry-1":              `"field":"exit"`,
				"exit=exit-1":                `"field":"entry"`,
				"entry=nowhere&exit=exit-1":  `"field":"entry"`,
			} {
				if code, body := get(q); code == 200 || !strings.Contains(body, field) {
					t.Errorf("%s: got %d %q, want an error naming %s", q, code, body, field)
				}
			}
			// A report without relays clears them.
			if r := e.want("POST", hello, entryCred, map[string]any{"listen_port": 51820}, 200); fmt.Sprint(r["changed"]) != "[relays]" || r["relays"] != nil {
				t.Errorf("report without relays: got %v, want relays cleared", r)
			}
			if code, _ := get("entry=entry-1&exit=exit-1"); code == 200 {
				t.Errorf("multihop configuration after the relay went: got 200")
			}
		})
	}
}
