package cli_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// auditSetup makes a data directory with an admin, a legal and a support
// staff member, whose additions are in the audit log, and returns the
// admin, the legal member (both may read the audit log) and the support
// member (who may not).
func auditSetup(t *testing.T) (data string, adm, legal, support *admin) {
	t.Helper()
	data = t.TempDir()
	op := &admin{t: t, data: data}
	pw := "correct horse battery staple\n"
	op.must(pw, "admin", "staff", "add", "--data", data, "--email", "admin@example.com", "--role", "admin")
	adm = op.as("admin@example.com")
	adm.must(pw, "admin", "staff", "add", "--data", data, "--email", "legal@example.com", "--role", "legal")
	adm.must(pw, "admin", "staff", "add", "--data", data, "--email", "support@example.com", "--role", "support")
	return data, adm, op.as("legal@example.com"), op.as("support@example.com")
}

var headRE = regexp.MustCompile(`^([1-9][0-9]*):([0-9a-f]{64})\n$`)

// takeHead runs `admin audit head` and returns the head it prints.
func takeHead(t *testing.T, a *admin) string {
	t.Helper()
	out := a.must("", "admin", "audit", "head", "--data", a.data)
	if !headRE.MatchString(out) {
		t.Fatalf("audit head: got %q, want SEQ:HASH alone on a line", out)
	}
	return strings.TrimSpace(out)
}

// sqlDB opens the data directory's database behind the server's back, as
// someone with access to the file would.
func sqlDB(t *testing.T, data string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(data, "nitronet.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func sqlExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestAuditHeadCLI: `admin audit head` prints the head (also as JSON), and
// `admin audit verify --head` proves the log against it, in text and JSON.
func TestAuditHeadCLI(t *testing.T) {
	data, adm, legal, support := auditSetup(t)
	head := takeHead(t, adm)

	var js struct {
		Seq        int64
		Hash, Head string
	}
	if err := json.Unmarshal([]byte(adm.must("", "admin", "audit", "head", "--data", data, "--json")), &js); err != nil {
		t.Fatal(err)
	}
	if js.Head != fmt.Sprintf("%d:%s", js.Seq, js.Hash) || js.Seq <= 0 {
		t.Fatalf("audit head --json: got %+v, want seq, hash and head agreeing", js)
	}

	out := adm.must("", "admin", "audit", "verify", "--data", data, "--head", head)
	seq := strings.Split(head, ":")[0]
	if !strings.Contains(out, "Audit log proves head "+seq) || !strings.Contains(out, "from its first entry") {
		t.Fatalf("verify --head: got %q, want a proof from the first entry", out)
	}
	var res struct {
		Result, Head, Current string
		Entries               int
	}
	if err := json.Unmarshal([]byte(adm.must("", "admin", "audit", "verify", "--data", data, "--head", head, "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Result != "intact" || res.Head != head || res.Entries == 0 || res.Current == head {
		t.Fatalf("verify --head --json: got %+v, want intact, with a newer current head (the first verify was recorded)", res)
	}

	for _, tc := range []struct {
		name string
		who  *admin
		args []string
		want string
	}{
		{"malformed head", adm, []string{"--head", "12:abcd"}, "--head: audit head hash has 4 hexadecimal digits, want 64"},
		{"not a head", adm, []string{"--head", "latest"}, "--head: audit head \"latest\" is not SEQ:HASH"},
		{"json without head", adm, []string{"--json"}, "--json needs --head"},
		{"legal may prove the log", legal, []string{"--head", head}, ""},
		{"support may not", support, []string{"--head", head}, "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.who.run("", append([]string{"admin", "audit", "verify", "--data", data}, tc.args...)...)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want a proof", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestAuditVerifyHeadCLI changes the log behind the server's back in each
// way the head must catch, in a data directory of its own, and checks the
// answer and the exit (an error) of `admin audit verify --head`, as JSON
// and then as text.
func TestAuditVerifyHeadCLI(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, data string, db *sql.DB, seq int64)
		result string // the JSON result of the first check
		text   string // in the text error of the second
	}{
		{"tampered", func(t *testing.T, _ string, db *sql.DB, seq int64) {
			sqlExec(t, db, `UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 1`)
		}, "tampered", "audit log TAMPERED against head"},
		{"truncated", func(t *testing.T, _ string, db *sql.DB, seq int64) {
			sqlExec(t, db, `DELETE FROM audit_log WHERE seq >= $1`, seq)
		}, "truncated", "audit log TRUNCATED against head"},
		// The first check, recorded, writes on the rolled-back log: the
		// head's seq then holds another entry.
		{"rolled back", nil, "rolled_back", "audit log TAMPERED against head"},
		{"pruned", func(t *testing.T, _ string, db *sql.DB, seq int64) {
			// What retention leaves: the oldest entries gone, the anchor
			// at the newest of them.
			var hash []byte
			if err := db.QueryRow(`SELECT hash FROM audit_log WHERE seq = $1`, seq+1).Scan(&hash); err != nil {
				t.Fatal(err)
			}
			sqlExec(t, db, `DELETE FROM audit_log WHERE seq <= $1`, seq+1)
			sqlExec(t, db, `UPDATE audit_head SET anchor_seq = $1, anchor_hash = $2`, seq+1, hash)
		}, "pruned", "cannot prove head"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, adm, _, _ := auditSetup(t)
			db := sqlDB(t, data)
			backup := filepath.Join(t.TempDir(), "backup.db")
			sqlExec(t, db, `VACUUM INTO '`+backup+`'`)               // a backup, taken before the head
			adm.must("", "admin", "audit", "verify", "--data", data) // recorded: an entry after the backup
			head := takeHead(t, adm)
			var seq int64
			if _, err := fmt.Sscanf(head, "%d:", &seq); err != nil {
				t.Fatal(err)
			}
			adm.must("", "admin", "audit", "verify", "--data", data) // an entry after the head

			if tc.change == nil {
				// Roll back: restore the backup over the database.
				db.Close()
				b, err := os.ReadFile(backup)
				if err != nil {
					t.Fatal(err)
				}
				for _, suffix := range []string{"-wal", "-shm"} {
					os.Remove(filepath.Join(data, "nitronet.db"+suffix))
				}
				if err := os.WriteFile(filepath.Join(data, "nitronet.db"), b, 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				tc.change(t, data, db, seq)
			}

			out, _, err := adm.run("", "admin", "audit", "verify", "--data", data, "--head", head, "--json")
			var res struct{ Result, Detail string }
			if jerr := json.Unmarshal([]byte(out), &res); jerr != nil || res.Result != tc.result || res.Detail == "" {
				t.Fatalf("verify --json: got %q (%v), want result %q with a detail", out, jerr, tc.result)
			}
			if err == nil {
				t.Fatalf("verify --json exit: got success, want an error for %s", tc.result)
			}
			_, _, err = adm.run("", "admin", "audit", "verify", "--data", data, "--head", head)
			if err == nil || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("verify: got %v, want an error containing %q", err, tc.text)
			}
		})
	}
}

// TestTransparencyCarriesAuditHead: the signed report carries the audit
// head at signing, `transparency verify` shows it, and the log proves it.
func TestTransparencyCarriesAuditHead(t *testing.T) {
	data, adm, legal, _ := auditSetup(t)
	report := filepath.Join(t.TempDir(), "report.json")
	out := legal.must("", "admin", "transparency", "--data", data, "--period", "2026H1", "--output", report)
	m := regexp.MustCompile(`Audit log head signed into it: (\d+:[0-9a-f]{64})\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("admin transparency: got %q, want the audit head", out)
	}
	key := regexp.MustCompile(`Public key: (\S+)`).FindStringSubmatch(out)
	out = adm.must("", "transparency", "verify", report, "--public-key", key[1])
	if !regexp.MustCompile(`Audit log head:\s+` + m[1] + `\n`).MatchString(out) {
		t.Fatalf("transparency verify: got %q, want the audit head %s", out, m[1])
	}
	if out := adm.must("", "admin", "audit", "verify", "--data", data, "--head", m[1]); !strings.Contains(out, "Audit log proves head") {
		t.Fatalf("verify against the report's head: got %q", out)
	}

	// A report of the earlier format still verifies, and says it has none.
	v1 := filepath.Join("..", "transparency", "testdata", "report-v1.json")
	pub, err := os.ReadFile(filepath.Join("..", "transparency", "testdata", "report-v1.pub"))
	if err != nil {
		t.Fatal(err)
	}
	out = adm.must("", "transparency", "verify", v1, "--public-key", strings.TrimSpace(string(pub)))
	if !strings.Contains(out, "Audit log head:") || !strings.Contains(out, "not stated (reports of formats 1 and 2 do not carry it)") {
		t.Fatalf("transparency verify of a format 1 report: got %q", out)
	}
}
