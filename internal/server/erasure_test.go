package server_test

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/disclosures"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// TestErasureLeavesNothing erases, on each engine, an account that used
// every feature: two verified contacts and a change of email; devices,
// one renamed, one with a rotated key and one removed earlier; session
// intervals reported by a gateway that follows the peer feed; inbox
// messages (a policy notice, answers to requests, a disclosure notice);
// privacy requests of every type with details, extended, completed with
// a note and denied with a reason; an export; a legal hold that holds the
// erasure back and is then released. Once the erasure is complete it
// searches every file in the data directory (database, WAL, outbox,
// keys), every row of every table, on PostgreSQL every tuple of every
// relation, and the logs, for the account's email addresses, mobile,
// device public keys (base64, hex, raw), device names, tunnel addresses,
// the staff's texts to the user and the request details, in cleartext,
// base64 and hex. The gateway, meanwhile, must be told at once to drop
// the devices.
func TestErasureLeavesNothing(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testErasureLeavesNothing(t, b) })
	}
}

// secrets collects what must not survive the erasure, each with a label
// for failure messages.
type secrets struct {
	text map[string]string // label -> text, searched case-insensitively, hex and base64 too
	raw  map[string][]byte // label -> bytes, searched as they are, hex and base64 too
	// short holds byte strings too short to search in whole files (4-byte
	// IPv4 addresses): they are searched in row values only.
	short map[string][]byte
}

func newSecrets() *secrets {
	return &secrets{text: map[string]string{}, raw: map[string][]byte{}, short: map[string][]byte{}}
}

func (s *secrets) addText(label, v string) { s.text[label] = v }

// addKey adds a WireGuard public key: base64 (as the API shows it), hex
// and raw.
func (s *secrets) addKey(t *testing.T, label, b64 string) {
	t.Helper()
	k, err := wgkey.ParsePublic(b64)
	if err != nil {
		t.Fatal(err)
	}
	s.text[label+" (base64)"] = b64
	s.raw[label+" (raw)"] = bytes.Clone(k[:])
}

// addAddrs adds a device's tunnel addresses ("100.64.0.2/32" form), as
// text and as raw bytes.
func (s *secrets) addAddrs(t *testing.T, label string, addrs []any) {
	t.Helper()
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.(string))
		if err != nil {
			t.Fatal(err)
		}
		s.text[label+" "+p.Addr().String()] = p.Addr().String()
		if p.Addr().Is4() {
			b := p.Addr().As4()
			s.short[label+" "+p.Addr().String()+" (raw)"] = b[:]
		} else {
			b := p.Addr().As16()
			s.raw[label+" "+p.Addr().String()+" (raw)"] = b[:]
		}
	}
}

// needle is one encoding of one secret.
type needle struct {
	label string
	b     []byte
	fold  bool // compare case-insensitively
}

// base64Forms returns the base64 encodings of b as it would appear inside
// a longer encoded string: at each of the three alignments, without the
// characters that depend on neighbouring bytes, in the standard and URL
// alphabets.
func base64Forms(b []byte) [][]byte {
	var out [][]byte
	for off := 0; off < 3; off++ {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			s := enc.EncodeToString(append(make([]byte, off), b...))
			s = strings.TrimRight(s, "=")
			s = s[[]int{0, 2, 3}[off]:]
			if (off+len(b))%3 != 0 {
				s = s[:len(s)-1]
			}
			if len(s) >= 8 {
				out = append(out, []byte(s))
			}
		}
	}
	return out
}

// needles returns every form of every secret: cleartext, hex (matched in
// either case) and base64.
func (s *secrets) needles() []needle {
	var out []needle
	add := func(label string, b []byte, foldText bool) {
		out = append(out, needle{label, b, foldText})
		out = append(out, needle{label + " in hex", []byte(hex.EncodeToString(b)), true})
		for _, f := range base64Forms(b) {
			out = append(out, needle{label + " in base64", f, false})
		}
	}
	for l, v := range s.text {
		add(l, []byte(v), true)
	}
	for l, v := range s.raw {
		add(l, v, false)
	}
	return out
}

// find returns the labels of the needles in hay.
func find(hay []byte, ns []needle) []string {
	var found []string
	lower := asciiLower(hay)
	for _, n := range ns {
		h, b := hay, n.b
		if n.fold {
			h, b = lower, asciiLower(n.b)
		}
		if bytes.Contains(h, b) {
			found = append(found, n.label)
		}
	}
	return found
}

func testErasureLeavesNothing(t *testing.T, b storetest.Backend) {
	e := newDBEnv(t, b)
	ctx := t.Context()
	sec := newSecrets()
	uniq := func(what string) string {
		var r [6]byte
		rand.Read(r[:])
		return what + " " + hex.EncodeToString(r[:])
	}
	const email, email2, mobile = "erasable.person@example.com", "renamed.person@example.org", "+447911100987"
	sec.addText("email", email)
	sec.addText("new email", email2)
	sec.addText("mobile", mobile)
	sec.addText("mobile without +", strings.TrimPrefix(mobile, "+"))
	sec.addText("national mobile", "7911100987")

	accID, tok := e.signup(email, mobile)
	_, otherTok := e.signup("bystander@example.com", "+447911100988")
	e.want("POST", "/api/v1/devices", otherTok, map[string]string{"name": "bystander", "public_key": newKey(t)}, 201)

	// A gateway that follows the feed.
	admin := staff.Principal{ID: "stf_admin", Role: staff.RoleAdmin}
	_, enrollTok, err := e.srv.Gateways.Add(ctx, admin, "eu-west", "198.18.0.1:51820")
	if err != nil {
		t.Fatal(err)
	}
	cred := e.want("POST", "/api/v1/gateway/enroll", "", map[string]string{"token": enrollTok, "public_key": newKey(t)}, 201)["credential"].(string)
	cursor := int64(e.want("GET", "/api/v1/gateway/peers?since=0&wait=1", cred, nil, 200)["version"].(float64))

	// Devices: one renamed and rotated, one kept as it is, one removed.
	device := func(name string) (string, map[string]any) {
		key := newKey(t)
		sec.addText("device name "+name, name)
		d := e.want("POST", "/api/v1/devices", tok, map[string]string{"name": name, "public_key": key}, 201)
		sec.addKey(t, "key of "+name, key)
		sec.addAddrs(t, "address of "+name, d["addresses"].([]any))
		return d["id"].(string), d
	}
	d1, _ := device(uniq("Laptop"))
	renamed := uniq("Renamed phone")
	sec.addText("renamed device", renamed)
	e.want("PATCH", "/api/v1/devices/"+d1, tok, map[string]string{"name": renamed}, 200)
	rotated := newKey(t)
	sec.addKey(t, "rotated key", rotated)
	e.want("PATCH", "/api/v1/devices/"+d1, tok, map[string]string{"public_key": rotated}, 200)
	d2, _ := device(uniq("Tablet"))
	d3, _ := device(uniq("Old desktop"))
	e.want("DELETE", "/api/v1/devices/"+d3, tok, nil, 204)

	// The gateway reports sessions and catches up with the feed.
	// Not before the devices were created, nor in the future.
	start := time.Now().UTC().Truncate(time.Minute)
	end := start.Add(time.Minute)
	e.want("POST", "/api/v1/gateway/sessions", cred, map[string]any{"intervals": []map[string]any{
		{"device_id": d1, "start": start, "end": end}, {"device_id": d2, "start": start},
	}}, 204)
	for {
		u := e.want("GET", fmt.Sprintf("/api/v1/gateway/peers?since=%d&wait=1", cursor), cred, nil, 200)
		v := int64(u["version"].(float64))
		if v == cursor {
			break
		}
		cursor = v
	}

	// A policy notice in every inbox.
	officer := staff.Principal{ID: "stf_officer", Role: staff.RolePrivacyOfficer}
	legal := staff.Principal{ID: "stf_legal", Role: staff.RoleLegal}
	pub, err := e.srv.Policy.Publish(ctx, officer, "privacy", "Version two of the policy.", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Notices.Run(ctx, pub.Run.ID, nil); err != nil {
		t.Fatal(err)
	}
	e.want("POST", "/api/v1/me/policy/accept", tok, map[string]string{"document_id": pub.Document.ID}, 200)
	// A second session, on another device.
	e.want("POST", "/api/v1/sessions", "", map[string]string{"email": email, "password": "correct horse battery"}, 201)

	// Privacy requests of every type, each with its own details.
	const pw = "correct horse battery"
	to := email
	request := func(typ string) string {
		details := uniq("details of my " + typ + " request")
		sec.addText("details of "+typ, details)
		return e.want("POST", "/api/v1/privacy/requests", tok, map[string]string{"type": typ, "details": details}, 201)["id"].(string)
	}
	verify := func(id string) map[string]any {
		ecode := codeRE.FindStringSubmatch(e.lastMessage("privacy-code", to))[1]
		mcode := codeRE.FindStringSubmatch(e.lastMessage("privacy-code", mobile))[1]
		return e.want("POST", "/api/v1/privacy/requests/"+id+"/verify", tok,
			map[string]string{"password": pw, "email_code": ecode, "mobile_code": mcode}, 200)
	}
	access := request("access")
	verify(access)
	xt := e.want("POST", "/api/v1/privacy/requests/"+access+"/export-token", tok, nil, 201)
	req, _ := http.NewRequest("GET", e.url+xt["url"].(string), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	export, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(export, []byte(email)) || !bytes.Contains(export, []byte(renamed)) {
		t.Fatalf("export: got %d %.300s, want the account's data with the device name", resp.StatusCode, export)
	}
	verify(request("portability"))
	verify(request("restriction"))
	verify(request("objection"))

	// Staff answer: an extension, a completion with a note, a denial.
	rect := request("rectification")
	verify(rect)
	reason := uniq("We need the archive team for your rectification")
	sec.addText("extension reason", reason)
	if _, err := e.srv.Privacy.Extend(ctx, officer, rect, 1, reason); err != nil {
		t.Fatal(err)
	}
	note := uniq("We corrected the spelling of your name in the billing record")
	sec.addText("completion note", note)
	if _, err := e.srv.Privacy.Complete(ctx, officer, rect, note); err != nil {
		t.Fatal(err)
	}
	denied := request("access")
	denial := uniq("A request for the same data is being answered")
	sec.addText("denial reason", denial)
	if _, err := e.srv.Privacy.Deny(ctx, officer, denied, denial); err != nil {
		t.Fatal(err)
	}

	// A request that arrived by phone, recorded by staff with a note and
	// proven by the codes the caller reads back.
	support := staff.Principal{ID: "stf_support", Role: staff.RoleSupport}
	phoneNote := uniq("Caller asks for a copy of the data about their devices")
	sec.addText("note of the request by phone", phoneNote)
	byPhone, err := e.srv.Privacy.StaffAdd(ctx, support, privacy.Intake{Type: "access", Mobile: mobile, Channel: "phone", Note: phoneNote})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Privacy.StaffVerify(ctx, support, byPhone.ID, codeRE.FindStringSubmatch(e.lastMessage("privacy-code", to))[1],
		codeRE.FindStringSubmatch(e.lastMessage("privacy-code", mobile))[1]); err != nil {
		t.Fatal(err)
	}
	if got, err := e.srv.Privacy.StaffShow(ctx, officer, byPhone.ID); err != nil || got.Details != phoneNote {
		t.Fatalf("request by phone: got %+v, %v, want the note", got, err)
	}

	// A change of email, through a rectification request.
	verify(request("rectification"))
	e.want("POST", "/api/v1/me/contact", tok, map[string]string{"channel": "email", "value": email2, "password": pw}, 202)
	ccode := codeRE.FindStringSubmatch(e.lastMessage("contact-change-code", email2))[1]
	e.want("POST", "/api/v1/me/contact/verify", tok, map[string]string{"channel": "email", "code": ccode}, 200)
	to = email2

	// A disclosure names the account; it is told at once (no gag).
	if _, err := e.srv.Disclosures.Add(ctx, legal, disclosures.Input{
		Reference: "ORD-2026-17", Authority: "Example Court", Jurisdiction: "EU", LegalBasis: "Art. 99 Example Code",
		Type: disclosures.Types()[0], ReceivedAt: time.Now().Add(-time.Hour), ScopeRequested: "account record",
		Decision: "complied", Categories: []string{inventory.IDAccount}, Fields: []string{"account ID", "created at"},
		Accounts: []string{accID},
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.srv.Disclosures.NotifyLapsedGags(ctx, staff.System()); err != nil || n != 1 {
		t.Fatalf("disclosure notices: got %d, %v, want 1", n, err)
	}
	box := e.want("GET", "/api/v1/me/inbox", tok, nil, 200)["messages"].([]any)
	if len(box) < 5 {
		t.Fatalf("inbox: got %d messages, want the policy notice, the staff's answers and the disclosure notice", len(box))
	}

	// A legal hold holds the erasure back; once it is released the
	// erasure completes.
	hold, err := e.srv.Holds.Add(ctx, legal, accID, "Case 2026-0117", nil)
	if err != nil {
		t.Fatal(err)
	}
	er := request("erasure")
	verify(er)
	rep := e.want("POST", "/api/v1/privacy/requests/"+er+"/confirm-erasure", tok, map[string]bool{"confirm": true}, 200)
	if rep["status"] != store.RequestHeld {
		t.Fatalf("erasure under a hold: got %v, want held", rep)
	}
	if err := e.srv.Holds.Release(ctx, legal, hold.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := e.srv.Privacy.ResumeErasures(ctx, staff.System()); err != nil || n != 1 {
		t.Fatalf("resume erasures: got %d, %v, want 1", n, err)
	}
	if _, err := e.srv.Store.Tombstone(ctx, er); err != nil {
		t.Fatalf("tombstone: %v", err)
	}

	// The gateway is told at once to drop both remaining devices: by
	// device ID, or, for a gateway that cannot, by a snapshot.
	u := e.want("GET", fmt.Sprintf("/api/v1/gateway/peers?since=%d&wait=5&removals=device", cursor), cred, nil, 200)
	if u["full"] == true {
		t.Fatalf("poll after erasure: got a snapshot, want changes")
	}
	assertDropped(t, u, d1, d2)
	u = e.want("GET", fmt.Sprintf("/api/v1/gateway/peers?since=%d&wait=5", cursor), cred, nil, 200)
	assertDropped(t, u, d1, d2)

	// Nothing of it is left anywhere.
	ns := sec.needles()
	if got := find([]byte(e.logs.String()), ns); len(got) > 0 {
		t.Errorf("the logs hold %q", got)
	}
	err = filepath.WalkDir(e.dir, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if got := find(data, ns); len(got) > 0 {
			rel, _ := filepath.Rel(e.dir, p)
			t.Errorf("file %s holds %q", rel, got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for table, rows := range storetest.Dump(t, e.engine, e.db) {
		for _, row := range rows {
			for _, v := range row {
				var data []byte
				switch v := v.(type) {
				case []byte:
					data = v
					for l, s := range sec.short {
						if bytes.Contains(v, s) {
							t.Errorf("a row of %s holds %s", table, l)
						}
					}
				case string:
					data = []byte(v)
				default:
					continue
				}
				if got := find(data, ns); len(got) > 0 {
					t.Errorf("a row of %s holds %q", table, got)
				}
			}
		}
	}
	if e.engine == "postgres" {
		searchTuples(t, e.db, ns)
		searchDataDir(t, e.db, ns)
	}
}

// assertDropped fails t unless u, a peers poll answer, drops every device
// in ids: a removal of each, or a full snapshot without them.
func assertDropped(t *testing.T, u map[string]any, ids ...string) {
	t.Helper()
	if u["full"] == true {
		peers, _ := u["peers"].([]any)
		for _, p := range peers {
			for _, id := range ids {
				if p.(map[string]any)["device_id"] == id {
					t.Fatalf("snapshot after erasure still lists device %s", id)
				}
			}
		}
		return
	}
	changes, _ := u["changes"].([]any)
	removed := map[string]bool{}
	for _, c := range changes {
		c := c.(map[string]any)
		if c["removed"] == true {
			removed[c["device_id"].(string)] = true
		}
	}
	for _, id := range ids {
		if !removed[id] {
			t.Fatalf("poll after erasure: got %v, want device %s removed", u, id)
		}
	}
}

// searchTuples searches every page of every relation of the database
// (tables, their TOAST tables and indexes), through pageinspect, and
// fails if a needle lies outside a page's free space: in a line pointer
// or a tuple, live or dead. The free space between a page's pd_lower and
// pd_upper may keep the bytes of removed tuples until PostgreSQL reuses
// it, as its WAL segments do: that is the limit docs/erasure.md states,
// and it is reported here, not failed.
func searchTuples(t *testing.T, db *sql.DB, ns []needle) {
	t.Helper()
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pageinspect`); err != nil {
		t.Fatalf("pageinspect (needs a superuser): %v", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT c.oid::regclass::text, c.relkind, pg_relation_size(c.oid) / current_setting('block_size')::int
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 't', 'i') AND (n.nspname = current_schema()
			OR c.oid IN (SELECT reltoastrelid FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()))
			OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT reltoastrelid FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()))))`)
	if err != nil {
		t.Fatal(err)
	}
	type rel struct {
		name   string
		kind   string
		blocks int64
	}
	var rels []rel
	for rows.Next() {
		var r rel
		if err := rows.Scan(&r.name, &r.kind, &r.blocks); err != nil {
			t.Fatal(err)
		}
		rels = append(rels, r)
	}
	rows.Close()
	if len(rels) == 0 {
		t.Fatal("no relations to search")
	}
	residue := map[string]bool{}
	for _, r := range rels {
		for blk := int64(0); blk < r.blocks; blk++ {
			var page []byte
			if err := db.QueryRowContext(ctx, `SELECT get_raw_page($1, $2::int)`, r.name, blk).Scan(&page); err != nil {
				t.Fatalf("%s block %d: %v", r.name, blk, err)
			}
			if len(page) < 24 {
				t.Fatalf("%s block %d: page of %d bytes", r.name, blk, len(page))
			}
			lower, upper := int(binary.LittleEndian.Uint16(page[12:])), int(binary.LittleEndian.Uint16(page[14:]))
			for _, n := range ns {
				for _, at := range indexAll(page, n) {
					if at >= lower && at+len(n.b) <= upper {
						residue[r.name+": "+n.label] = true
						continue
					}
					t.Errorf("relation %s block %d holds %q at %d, outside the free space [%d, %d)", r.name, blk, n.label, at, lower, upper)
				}
			}
		}
	}
	if len(residue) > 0 {
		t.Logf("free space of pages still holds (removed tuples, not yet overwritten): %v", slices.Sorted(maps.Keys(residue)))
	}
}

// searchDataDir searches the files of the PostgreSQL cluster the test
// owns (the throwaway cluster of scripts/pg-throwaway.sh, found through
// NITRONET_PG_THROWAWAY_DIR; without it, or unreadable, it logs that it
// skipped). After a checkpoint, which writes every changed page to the
// relation files, it reads every page of the test's database (its tables,
// indexes and system catalogs, pg_statistic among them) and of the shared
// catalogs, and fails if a needle lies outside a page's free space, as
// searchTuples does; it fails on any needle in the server's log and the
// other files of the cluster. The WAL (pg_wal) is searched and what it
// holds reported, not failed: docs/erasure.md states that limit. Other
// tests' databases are not searched.
func searchDataDir(t *testing.T, db *sql.DB, ns []needle) {
	t.Helper()
	dir := os.Getenv("NITRONET_PG_THROWAWAY_DIR")
	if dir == "" {
		t.Log("PostgreSQL data directory not searched: NITRONET_PG_THROWAWAY_DIR is not set")
		return
	}
	data := filepath.Join(dir, "data")
	if _, err := os.ReadDir(data); err != nil {
		t.Logf("PostgreSQL data directory not searched: %v", err)
		return
	}
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, `CHECKPOINT`); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	var dbOID string
	if err := db.QueryRowContext(ctx, `SELECT oid::text FROM pg_database WHERE datname = current_database()`).Scan(&dbOID); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(data, "base", dbOID) + string(filepath.Separator)
	wal := map[string]bool{}
	residue := map[string]bool{}
	searched := 0
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) { // a temporary file PostgreSQL removed meanwhile
				return nil
			}
			return err
		}
		if de.IsDir() || !de.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		base := filepath.Join(data, "base") + string(filepath.Separator)
		if strings.HasPrefix(p, base) && !strings.HasPrefix(p, mine) {
			return nil // another test's database
		}
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			return nil
		} else if err != nil {
			return err
		}
		searched++
		switch {
		case strings.HasPrefix(rel, filepath.Join("data", "pg_wal")+string(filepath.Separator)):
			for _, l := range find(b, ns) {
				wal[l] = true
			}
		case strings.HasPrefix(p, mine) || strings.HasPrefix(rel, filepath.Join("data", "global")+string(filepath.Separator)):
			searchPages(t, rel, b, ns, residue)
		default:
			if got := find(b, ns); len(got) > 0 {
				t.Errorf("file %s of the PostgreSQL cluster holds %q", rel, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if searched == 0 {
		t.Fatal("no file of the PostgreSQL cluster searched")
	}
	t.Logf("searched %d files of the PostgreSQL cluster", searched)
	if len(residue) > 0 {
		t.Logf("free space of pages in the relation files still holds: %v", slices.Sorted(maps.Keys(residue)))
	}
	if len(wal) > 0 {
		t.Logf("the WAL (pg_wal) still holds: %v", slices.Sorted(maps.Keys(wal)))
	}
}

// searchPages searches b, a relation file of 8 KiB pages, as searchTuples
// searches pages: a needle in a page's free space is recorded in residue,
// anywhere else it fails t.
func searchPages(t *testing.T, name string, b []byte, ns []needle, residue map[string]bool) {
	t.Helper()
	const pageSize = 8192
	for off := 0; off < len(b); off += pageSize {
		page := b[off:min(off+pageSize, len(b))]
		lower, upper := 0, 0
		if len(page) >= 24 {
			lower, upper = int(binary.LittleEndian.Uint16(page[12:])), int(binary.LittleEndian.Uint16(page[14:]))
		}
		for _, n := range ns {
			for _, at := range indexAll(page, n) {
				if at >= lower && at+len(n.b) <= upper {
					residue[name+": "+n.label] = true
					continue
				}
				t.Errorf("file %s page %d holds %q at %d, outside the free space [%d, %d)", name, off/pageSize, n.label, at, lower, upper)
			}
		}
	}
}

// asciiLower returns b with A-Z lowered and every other byte as it is,
// so that offsets into it are offsets into b (bytes.ToLower replaces
// invalid UTF-8, which changes lengths).
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// indexAll returns the offsets of every occurrence of n in hay.
func indexAll(hay []byte, n needle) []int {
	h, b := hay, n.b
	if n.fold {
		h, b = asciiLower(hay), asciiLower(n.b)
	}
	var out []int
	for off := 0; ; {
		i := bytes.Index(h[off:], b)
		if i < 0 {
			return out
		}
		out = append(out, off+i)
		off += i + 1
	}
}
