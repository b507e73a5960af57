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
