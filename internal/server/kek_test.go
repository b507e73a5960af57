package server_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/rekey"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/vault"

	_ "modernc.org/sqlite" // VACUUM INTO, for the backup
)

// backup copies what a backup of the database holds of every account
// with a key: on SQLite a real copy of the database file (VACUUM INTO,
// as an online backup does), read back through a store of its own; on
// PostgreSQL the rows as a dump would hold them.
func backup(t *testing.T, e *env, b storetest.Backend) []store.KeyedAccount {
	t.Helper()
	ctx := context.Background()
	src := e.srv.Store
	if b.Name == "sqlite" {
		path := filepath.Join(t.TempDir(), "backup.db")
		db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "nitronet.db")+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
			t.Fatalf("VACUUM INTO: %v", err)
		}
		cp, err := sqlstore.OpenSQLite(ctx, path, store.Pool{V4: e.srv.Config.V4, V6: e.srv.Config.V6}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer cp.Close()
		src = cp
	}
	as, err := src.KeyedAccounts(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// readable reports whether account id's email in the backup can be
// decrypted with the KEKs now in the data directory's keyring.
func readable(t *testing.T, e *env, bk []store.KeyedAccount, id string) (string, error) {
	t.Helper()
	i := slices.IndexFunc(bk, func(a store.KeyedAccount) bool { return a.ID == id })
	if i < 0 {
		t.Fatalf("account %s is not in the backup", id)
	}
	v, err := vault.Open(vault.Config{Dir: e.srv.Config.Keyring, LegacyFile: e.srv.Config.KEKFile})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := v.Unwrap(id, bk[i].WrappedKey)
	if err != nil {
		return "", err
	}
	pt, err := dk.Open(bk[i].EmailSealed, []byte(id+"|email"))
	return string(pt), err
}

// TestKEKRotationShredsBackups: a backup taken before an erasure still
// decrypts the erased account with the keyring of the data directory
// until a KEK rotation destroys the KEK it needs; afterwards it does not,
// while the live service, rotated online, keeps working for everyone
// else.
func TestKEKRotationShredsBackups(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			// The settle time must outlast the first pass, which a loaded
			// machine stretched past 1 s (the rotation then finished in
			// its first call).
			e := newEnvWith(t, b, nil, func(c *config.Settings) { c.KEKSettle = 5 * time.Second })
			ctx := context.Background()
			gone, goneTok := e.signup("erased@example.com", "+447911100301")
			kept, _ := e.signup("kept@example.com", "+447911100302")
			e.want("POST", "/api/v1/devices", goneTok, map[string]string{"name": "laptop", "public_key": newKey(t)}, 201)
			if _, err := e.srv.Staff.Bootstrap(ctx, "admin@staff.example", staff.RoleAdmin, "staff password 1"); err != nil {
				t.Fatal(err)
			}
			admin, err := e.srv.Staff.Check(ctx, staff.Credentials{Email: "admin@staff.example", Password: "staff password 1"})
			if err != nil {
				t.Fatal(err)
			}

			bk := backup(t, e, b)
			if email, err := readable(t, e, bk, gone); err != nil || email != "erased@example.com" {
				t.Fatalf("the backup before rotation: got %q, %v; want it readable", email, err)
			}

			// Erase over HTTP.
			er := e.want("POST", "/api/v1/privacy/requests", goneTok, map[string]string{"type": "erasure"}, 201)
			eid := er["id"].(string)
			ecode := codeRE.FindStringSubmatch(e.lastMessage("privacy-code", "erased@example.com"))[1]
			mcode := codeRE.FindStringSubmatch(e.lastMessage("privacy-code", "+447911100301"))[1]
			e.want("POST", "/api/v1/privacy/requests/"+eid+"/verify", goneTok,
				map[string]string{"password": "correct horse battery", "email_code": ecode, "mobile_code": mcode}, 200)
			e.want("POST", "/api/v1/privacy/requests/"+eid+"/confirm-erasure", goneTok, map[string]bool{"confirm": true}, 200)

			// The erasure crypto-shredded the live row, but the backup still
			// opens: its KEK exists.
			if email, err := readable(t, e, bk, gone); err != nil || email != "erased@example.com" {
				t.Fatalf("the backup after erasure, before rotation: got %q, %v; want it still readable", email, err)
			}

			old, err := e.srv.Vault.Primary()
			if err != nil {
				t.Fatal(err)
			}
			r, err := e.srv.Rekey.Rotate(ctx, admin)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			if r.Phase != rekey.PhaseSettling || r.Rewrapped != 1 || r.Target == old {
				t.Fatalf("first Rotate: got %+v, want settling with the kept account re-wrapped under a new KEK", r)
			}
			// While settling, the old KEK exists: the backup still opens,
			// and the service works on re-wrapped rows.
			if _, err := readable(t, e, bk, gone); err != nil {
				t.Fatalf("the backup while settling: %v; want readable", err)
			}
			tok := e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "kept@example.com", "password": "correct horse battery"}, 201)["token"].(string)
			if me := e.want("GET", "/api/v1/me", tok, nil, 200); me["email"] != "kept@example.com" || me["id"] != kept {
				t.Fatalf("profile during rotation: %v", me)
			}

			deadline := time.Now().Add(20 * time.Second)
			for r.Phase != rekey.PhaseFinished {
				if time.Now().After(deadline) {
					t.Fatalf("rotation did not finish: %+v", r)
				}
				time.Sleep(100 * time.Millisecond) // the settle time is wall-clock time
				if r, err = e.srv.Rekey.Rotate(ctx, admin); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(r.Destroyed, []uint32{old}) || r.Problem != "" {
				t.Fatalf("finished rotation: got %+v, want KEK %d destroyed", r, old)
			}
			if _, err := os.Stat(filepath.Join(e.srv.Config.Keyring, "kek-1.key")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the old KEK file is still there (stat %v)", err)
			}

			// Now the backup is unreadable with the data directory's KEKs,
			// for the erased account and every other.
			for _, id := range []string{gone, kept} {
				if email, err := readable(t, e, bk, id); !errors.Is(err, vault.ErrUnknownKEK) {
					t.Fatalf("the backup's %s after rotation: got %q, %v; want ErrUnknownKEK", id, email, err)
				}
			}
			// The live service still knows the kept account: login by email
			// (a blind index re-derived under the new KEK) and its profile.
			tok = e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "kept@example.com", "password": "correct horse battery"}, 201)["token"].(string)
			if me := e.want("GET", "/api/v1/me", tok, nil, 200); me["email"] != "kept@example.com" || me["mobile"] != "+447911100302" {
				t.Fatalf("profile after rotation: %v", me)
			}
			// The rotation is audited, and the keyring shows one KEK.
			es, err := e.srv.Store.AuditEntriesFor(ctx, "kek", 10)
			if err != nil || len(es) < 2 {
				t.Fatalf("audit of the rotation: %+v, %v", es, err)
			}
			st, err := e.srv.Rekey.Status(ctx, admin)
			if err != nil || len(st.KEKs) != 1 || st.KEKs[0].ID != r.Target || st.Current != nil || len(st.Recent) != 1 {
				t.Fatalf("Status after rotation: %+v, %v", st, err)
			}
		})
	}
}
