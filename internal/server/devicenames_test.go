package server_test

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/acctkey"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestIndexDeviceNames writes devices as the versions before names were
// indexed did (sealed names and plaintext ones, with no name index),
// duplicates among them in any case and a name "laptop (2)" that the
// first renaming would choose, and checks that the job indexes them all,
// renaming each duplicate after the oldest to the lowest free "NAME (N)"
// (sealed), leaves other accounts alone, finds nothing the second time,
// and that the names are then unique: a rename or a new device with a
// name in use is refused naming field "name", before the job too.
func TestIndexDeviceNames(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testIndexDeviceNames(t, b) })
	}
}

func testIndexDeviceNames(t *testing.T, b storetest.Backend) {
	e := newDBEnv(t, b)
	ctx := t.Context()
	accA, tokA := e.signup("names-a@example.com", "+447911100941")
	accB, tokB := e.signup("names-b@example.com", "+447911100942")
	accC, tokC := e.signup("names-c@example.com", "+447911100943")

	// legacy writes a device as an earlier version did: its name sealed
	// (or, with plain, in plaintext) and no name index.
	n := 0
	legacy := func(account, name string, plain bool) string {
		t.Helper()
		n++
		return writeLegacyDevice(t, e, account, name, plain, time.Unix(1_700_000_000+int64(n), 0))
	}
	a := []string{
		legacy(accA, "Laptop", false),
		legacy(accA, "LAPTOP", true), // a plaintext duplicate in another case
		legacy(accA, "laptop", false),
		legacy(accA, "laptop (2)", true),
		legacy(accA, "Straße", false),
		legacy(accA, "STRASSE", false), // the same name, case-folded
	}
	bLaptop := legacy(accB, "laptop", false)
	cPhone := legacy(accC, "Phone", true)

	names := func(tok string) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, d := range e.want("GET", "/api/v1/devices", tok, nil, 200)["devices"].([]any) {
			m := d.(map[string]any)
			out[m["id"].(string)] = m["name"].(string)
		}
		return out
	}
	conflict := func(what string, out map[string]any) {
		t.Helper()
		if f := out["error"].(map[string]any)["field"]; f != "name" {
			t.Fatalf("%s: error %v, want field name", what, out["error"])
		}
	}

	// Before the job: adding a name in use indexes the account first.
	conflict("adding PHONE beside a legacy Phone",
		e.want("POST", "/api/v1/devices", tokC, map[string]string{"name": "PHONE", "public_key": newKey(t)}, 409))

	// 3 plaintext names sealed, then 7 devices indexed (A's and B's; C's
	// was by the refused add).
	if done, err := e.srv.SealPlaintext(ctx); err != nil || done != 10 {
		t.Fatalf("SealPlaintext: got %d, %v; want 10", done, err)
	}
	want := map[string]string{
		a[0]: "Laptop", a[1]: "LAPTOP (3)", a[2]: "laptop (4)", a[3]: "laptop (2)", a[4]: "Straße", a[5]: "STRASSE (2)",
	}
	if got := names(tokA); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after indexing: names %v, want %v", got, want)
	}
	if got := names(tokB); got[bLaptop] != "laptop" {
		t.Fatalf("another account's laptop: %v", got)
	}
	if got := names(tokC); got[cPhone] != "Phone" {
		t.Fatalf("account C's Phone: %v", got)
	}
	var unindexed int
	var plain string
	if err := e.db.QueryRowContext(ctx, `SELECT count(*) FROM devices WHERE name_index IS NULL`).Scan(&unindexed); err != nil || unindexed != 0 {
		t.Fatalf("devices without a name index: %d, %v, want 0", unindexed, err)
	}
	if err := e.db.QueryRowContext(ctx, `SELECT name FROM devices WHERE id = $1`, a[1]).Scan(&plain); err != nil || plain != "" {
		t.Fatalf("renamed plaintext device: plaintext name %q, %v, want none", plain, err)
	}
	if n, err := e.srv.SealPlaintext(ctx); err != nil || n != 0 {
		t.Fatalf("SealPlaintext again: got %d, %v; want 0", n, err)
	}

	// Names are unique now.
	conflict("renaming to a name in use", e.want("PATCH", "/api/v1/devices/"+a[2], tokA, map[string]string{"name": "laptop"}, 409))
	conflict("renaming to a folded name in use", e.want("PATCH", "/api/v1/devices/"+a[0], tokA, map[string]string{"name": "strasse"}, 409))
	if got := e.want("PATCH", "/api/v1/devices/"+a[0], tokA, map[string]string{"name": "LAPTOP"}, 200)["name"]; got != "LAPTOP" {
		t.Fatalf("renaming to its own name in another case: %v", got)
	}
	e.want("PATCH", "/api/v1/devices/"+a[2], tokA, map[string]string{"name": "Desk"}, 200)
	if got := e.want("PATCH", "/api/v1/devices/"+a[1], tokA, map[string]string{"name": "laptop (4)"}, 200)["name"]; got != "laptop (4)" {
		t.Fatalf("renaming to a name freed by a rename: %v", got)
	}
	conflict("adding a name in use", e.want("POST", "/api/v1/devices", tokB, map[string]string{"name": " LAPTOP ", "public_key": newKey(t)}, 409))
	e.want("POST", "/api/v1/devices", tokB, map[string]string{"name": "Desk", "public_key": newKey(t)}, 201)
	for _, row := range storetest.Dump(t, e.engine, e.db)["devices"] {
		for _, v := range row {
			if s, ok := v.(string); ok && strings.Contains(strings.ToLower(s), "laptop") {
				t.Errorf("a device row holds the name %q in plaintext", s)
			}
		}
	}
}

// writeLegacyDevice writes a device of account as the versions before
// names were indexed did: its name sealed (or, with plain, in plaintext),
// no name index, created at created. It returns the device's ID.
func writeLegacyDevice(t *testing.T, e *dbEnv, account, name string, plain bool, created time.Time) string {
	t.Helper()
	ctx := t.Context()
	id, err := ident.New(rand.Reader, "dev")
	if err != nil {
		t.Fatal(err)
	}
	k, err := e.srv.Keys.Open(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	sealed, err := k.Seal(acctkey.DeviceName, id, name)
	if err != nil {
		t.Fatal(err)
	}
	d := &store.Device{ID: id, AccountID: account, SealedName: sealed, PublicKey: newKey(t), CreatedAt: created}
	if err := e.srv.Store.CreateDevice(ctx, d, 100); err != nil {
		t.Fatal(err)
	}
	if plain {
		if _, err := e.db.ExecContext(ctx, `UPDATE devices SET name = $1, name_sealed = NULL WHERE id = $2`, name, id); err != nil {
			t.Fatal(err)
		}
	}
	return id
}
