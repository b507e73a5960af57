package config

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestValidateGateway(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix string
		args   []string
		want   string // "" = valid, else the flag the error names
	}{
		{"serve defaults", "gateway-", []string{"--gateway", "userspace"}, ""},
		{"serve host alone", "gateway-", []string{"--gateway", "kernel", "--gateway-endpoint", "vpn.example.com"}, ""},
		{"serve port forward", "gateway-", []string{"--gateway", "kernel", "--gateway-endpoint", "vpn.example.com:443"}, ""},
		{"serve bad mode", "gateway-", []string{"--gateway", "foo"}, "--gateway "},
		{"serve empty endpoint", "gateway-", []string{"--gateway", "userspace", "--gateway-endpoint", ""}, "--gateway-endpoint"},
		{"serve bad endpoint", "gateway-", []string{"--gateway", "userspace", "--gateway-endpoint", "vpn.example.com:x"}, "--gateway-endpoint"},
		{"serve bad region", "gateway-", []string{"--gateway", "userspace", "--gateway-region", "EU WEST"}, "--gateway-region"},
		{"serve empty region", "gateway-", []string{"--gateway", "userspace", "--gateway-region", " "}, "--gateway-region"},
		{"serve port", "gateway-", []string{"--gateway", "userspace", "--gateway-listen-port", "0"}, "--gateway-listen-port"},
		{"standalone keeps record", "", []string{"--mode", "userspace"}, ""},
		{"standalone settings", "", []string{"--mode", "userspace", "--endpoint", "[2001:db8::1]", "--region", "eu-2"}, ""},
		{"standalone bad endpoint", "", []string{"--mode", "userspace", "--endpoint", "a b"}, "--endpoint"},
		{"standalone bad region", "", []string{"--mode", "userspace", "--region", "eu_2"}, "--region"},
		{"blocklists", "", []string{"--mode", "userspace", "--blocklist", "ads=/a.txt", "--blocklist", "Trackers=/t.hosts,ads=/b.txt"}, ""},
		{"blocklist without a file", "", []string{"--mode", "userspace", "--blocklist", "ads="}, "--blocklist"},
		{"blocklist bad category", "gateway-", []string{"--gateway", "userspace", "--gateway-blocklist", "porn=/p.txt"}, "--gateway-blocklist"},
		{"multihop relay", "", []string{"--mode", "userspace", "--multihop-relay", "51830=gw-b@198.19.1.1:51820,51831=gw-c@exit.example:51820"}, ""},
		{"multihop relay bad", "", []string{"--mode", "userspace", "--multihop-relay", "51830=gw-b"}, "--multihop-relay"},
		{"multihop relay own port", "", []string{"--mode", "userspace", "--multihop-relay", "51820=gw-b@198.19.1.1:51820"}, "--multihop-relay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Gateway
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			mode := "mode"
			if tc.prefix != "" {
				mode = "gateway"
			}
			fs.StringVar(&g.Mode, mode, "", "")
			g.Bind(fs, tc.prefix)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := g.Validate(tc.prefix)
			if tc.want == "" && err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestGatewayBlocklistSources(t *testing.T) {
	var g Gateway
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.StringVar(&g.Mode, "mode", "", "")
	g.Bind(fs, "")
	if err := fs.Parse([]string{"--mode", "kernel", "--blocklist", "ads=/a.txt", "--blocklist", "Gambling= /g.hosts"}); err != nil {
		t.Fatal(err)
	}
	if err := g.Validate(""); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range g.BlocklistSources {
		got = append(got, s.Category.String()+"="+s.Path)
	}
	if strings.Join(got, " ") != "ads=/a.txt gambling=/g.hosts" {
		t.Errorf("sources: got %v", got)
	}
}
