package config

import (
	"strings"
	"testing"
)

func TestValidateMobileRegion(t *testing.T) {
	for _, tc := range []struct {
		region string
		ok     bool
	}{
		{"", true},
		{"GB", true},
		{"de", true},
		{"XX", false},
		{"United Kingdom", false},
	} {
		t.Run(tc.region, func(t *testing.T) {
			c := Default()
			c.DataDir = t.TempDir()
			c.MobileRegion = tc.region
			err := c.Validate()
			if tc.ok && err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "--mobile-region")) {
				t.Fatalf("got %v, want an error naming --mobile-region", err)
			}
		})
	}
}

func TestValidateStatsBudget(t *testing.T) {
	if got := Default().StatsBudget; got != 3 {
		t.Fatalf("default --stats-budget: got %g, want 3", got)
	}
	for _, tc := range []struct {
		budget float64
		ok     bool
	}{{3, true}, {0.5, true}, {100, true}, {0, false}, {-1, false}, {101, false}} {
		c := Default()
		c.DataDir = t.TempDir()
		c.StatsBudget = tc.budget
		err := c.Validate()
		if tc.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), "--stats-budget")) {
			t.Errorf("--stats-budget %g: got %v, want ok=%v (errors naming the flag)", tc.budget, err, tc.ok)
		}
	}
}
