package sqlstore_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestQueryPlans checks that no statement of the registration and feed
// paths reads a table whole or sorts, except the snapshot, which reads
// devices whole on purpose and must not sort. On PostgreSQL sorts and
// sequential scans are disabled for the check (see Explain), so either in
// a plan means no index can serve the statement.
func TestQueryPlans(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			s := b.OpenSQL(t, storetest.DefaultPool())
			if _, _, err := s.Import(t.Context(), importAccounts(20), importDevices(0, 100, 20)); err != nil {
				t.Fatal(err)
			}
			for _, st := range sqlstore.PlannedStatements() {
				plan, err := s.Explain(t.Context(), st.SQL, st.Scans != "", st.Args...)
				if err != nil {
					t.Fatalf("%s: %v", st.Name, err)
				}
				text := strings.Join(plan, "\n")
				for _, line := range plan {
					line = strings.TrimSpace(line)
					var bad bool
					if b.Name == "sqlite" {
						bad = strings.HasPrefix(line, "SCAN ") && line != "SCAN CONSTANT ROW" &&
							line != "SCAN "+st.Scans && line != "SCAN "+st.Probes ||
							strings.Contains(line, "TEMP B-TREE")
					} else {
						bad = strings.Contains(line, "Sort") ||
							strings.Contains(line, "Seq Scan") && !strings.Contains(line, fmt.Sprintf("Seq Scan on %s ", st.Scans)) &&
								!strings.Contains(line, fmt.Sprintf("Seq Scan on %s ", st.Probes))
					}
					if bad {
						t.Errorf("%s: plan reads a table whole or sorts (%q):\n%s", st.Name, line, text)
					}
				}
				if st.Uses != "" && !strings.Contains(text, st.Uses) {
					t.Errorf("%s: plan does not use %s:\n%s", st.Name, st.Uses, text)
				}
				if st.Scans != "" && !strings.Contains(text, st.Scans) {
					t.Errorf("%s: plan does not read %s:\n%s", st.Name, st.Scans, text)
				}
			}
		})
	}
}
