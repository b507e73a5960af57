package sqlstore_test

import (
	"slices"
	"testing"

	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// noPersonalData lists the tables that hold no personal data, each with
// the reason. Every other table must appear in the data inventory
// (inventory.Default().Tables()): a new table fails TestInventoryComplete
// until it is declared in one place or the other.
func noPersonalData() map[string]string {
	return map[string]string{
		"goose_db_version":   "schema migration bookkeeping",
		"ipam_state":         "address allocator counter and pool prefixes",
		"ipam_free":          "free tunnel-address offsets, not linked to any device or account",
		"peer_feed":          "a single feed version counter",
		"gateways":           "the operator's gateways: region, endpoint, keys and credential hashes of machines",
		"audit_head":         "a single sequence counter of the audit chain",
		"retention_runs":     "counts per category of each sweep, never contents or identifiers",
		"notice_runs":        "the text of notices sent to everyone; per-account progress lives in inbox",
		"policy_documents":   "the published policy texts; published_by is a staff id (see staff.accounts)",
		"processors":         "the register of third-party processors: names, purposes and category ids",
		"erasure_tombstones": "only an erasure request id and a date, by design",
		"kek_rotations":      "key-encryption-key rotations: KEK ids, counts and times; started_by is a staff id (see staff.accounts)",
	}
}

// TestInventoryComplete opens a fresh store on each engine, lists every
// table of the schema and fails if a table is neither in the data
// inventory nor in noPersonalData, or is in both, or if either names a
// table that does not exist.
func TestInventoryComplete(t *testing.T) {
	inv := inventory.Default().Tables()
	allow := noPersonalData()
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := b.OpenSQL(t, storetest.DefaultPool())
			tables, err := s.Tables(t.Context())
			if err != nil {
				t.Fatalf("Tables: %v", err)
			}
			for _, tbl := range tables {
				_, ok := allow[tbl]
				declared := slices.Contains(inv, tbl)
				switch {
				case declared && ok:
					t.Errorf("table %s is both in the inventory and in noPersonalData; pick one", tbl)
				case !declared && !ok:
					t.Errorf("table %s is not in the data inventory: declare its personal data in internal/inventory, or add it to noPersonalData with the reason it holds none", tbl)
				}
			}
			for _, tbl := range inv {
				if !slices.Contains(tables, tbl) {
					t.Errorf("the inventory names table %s, which the schema does not have", tbl)
				}
			}
			for tbl := range allow {
				if !slices.Contains(tables, tbl) {
					t.Errorf("noPersonalData names table %s, which the schema does not have", tbl)
				}
			}
		})
	}
}
