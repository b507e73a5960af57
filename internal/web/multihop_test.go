package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/staff"
)

// TestPortalMultihopConfig: when a gateway relays to another, the key
// forms offer it as an entry; a device added with an entry gets the
// multihop configuration (the exit's key at the entry's relay port), and
// an entry that relays nowhere near the exit is refused beside the entry
// field before any device is added.
func TestPortalMultihopConfig(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	enroll := func(region, endpoint string) (cred, id, pub string) {
		_, tok, err := e.srv.Gateways.Add(ctx, staff.System(), region, endpoint)
		if err != nil {
			t.Fatal(err)
		}
		pub = key2(t)
		enr, err := e.srv.Gateways.Enroll(ctx, gwproto.EnrollRequest{Token: tok, PublicKey: pub})
		if err != nil {
			t.Fatal(err)
		}
		return enr.Credential, enr.ID, pub
	}
	entryCred, entryID, _ := enroll("entry-1", "198.18.0.11:51820")
	_, exitID, exitPub := enroll("exit-1", "198.18.0.12:51820")
	body, _ := json.Marshal(gwproto.HelloRequest{ListenPort: 51820, Relays: []gwproto.Relay{{Exit: exitID, Port: 51830}}})
	req, _ := http.NewRequest("POST", e.url+"/api/v1/gateway/hello", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+entryCred)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("hello with a relay: %d", resp.StatusCode)
	}

	u := e.client(t)
	u.signup("multihop@example.com", "+447911100731", "correct horse battery")
	acct := e.accountID("multihop@example.com", "correct horse battery")
	if _, page := u.get("/devices/new"); !strings.Contains(page, `<option value="`+entryID+`">entry-1`) || !strings.Contains(page, `name="entry"`) {
		t.Fatalf("the add-device page offers no entry for multihop:\n%s", page)
	}

	add := func(name, entry, exit string) (int, map[string]any) {
		t.Helper()
		tok := u.csrf("/devices/new")
		resp, body := u.post("/devices", url.Values{"name": {name}, "public_key": {key2(t)}, "gateway": {exit}, "entry": {entry}}, "X-CSRF-Token", tok)
		var m map[string]any
		_ = json.Unmarshal([]byte(body), &m)
		return resp.StatusCode, m
	}
	// The default gateway relays to nothing: refused beside the entry,
	// and no device is added.
	if status, m := add("tablet", e.gwID, exitID); status != http.StatusBadRequest || m["error"].(map[string]any)["field"] != "entry" {
		t.Fatalf("entry without a relay to the exit: got %d %v, want 400 beside the entry", status, m)
	}
	if ds, _ := e.srv.Devices.List(ctx, acct); len(ds) != 0 {
		t.Fatalf("a refused multihop route added %d devices", len(ds))
	}

	status, m := add("laptop", entryID, exitID)
	if status != http.StatusCreated {
		t.Fatalf("add with an entry: got %d %v", status, m)
	}
	confURL, _ := m["config_url"].(string)
	if !strings.Contains(confURL, "entry="+entryID) || !strings.Contains(confURL, "gateway="+exitID) {
		t.Fatalf("config URL %q: want the entry and the exit", confURL)
	}
	resp2, conf := u.get(confURL)
	if resp2.StatusCode != http.StatusOK || !strings.Contains(conf, "\nEndpoint = 198.18.0.11:51830\n") || !strings.Contains(conf, "\nPublicKey = "+exitPub+"\n") {
		t.Fatalf("multihop configuration: got %d %q, want the exit's key at the entry's relay port", resp2.StatusCode, conf)
	}
}
