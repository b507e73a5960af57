package storetest

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// testGatewayUpdate covers gateways created already enrolled (the
// in-process gateway of `serve --gateway`) and UpdateGateway, through which
// a gateway's start-up report changes its record.
func testGatewayUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	wantCode(t, "CreateGateway key without credential", s.CreateGateway(ctx,
		&store.Gateway{ID: "gw-k", Region: "eu", Endpoint: "198.18.0.1:1", PublicKey: PublicKey(3), CreatedAt: t0()}), errs.Invalid)
	g := &store.Gateway{ID: "gw-1", Region: "eu", Endpoint: "198.18.0.1:51820", PublicKey: PublicKey(1),
		CredentialHash: []byte("cred-1"), CreatedAt: t0()}
	must(t, "CreateGateway enrolled", s.CreateGateway(ctx, g))
	got, err := s.GatewayByCredential(ctx, []byte("cred-1"))
	must(t, "GatewayByCredential", err)
	if got.ID != "gw-1" || got.PublicKey != PublicKey(1) || got.EnrollHash != nil {
		t.Fatalf("GatewayByCredential: got %+v, want gw-1 enrolled with no enrollment hash", got)
	}
	must(t, "CreateGateway other", s.CreateGateway(ctx, &store.Gateway{ID: "gw-2", Region: "us", Endpoint: "198.18.0.2:51820",
		PublicKey: PublicKey(2), CredentialHash: []byte("cred-2"), CreatedAt: t0()}))

	region, endpoint, tcpPort, noTCP := "eu-north", "vpn.example.net:443", 8443, 0
	withTCP := func(g store.Gateway, port int) store.Gateway { g.TCPPort = port; return g }
	relays, noRelays := []store.Relay{{Exit: "gw-3", Port: 51831}, {Exit: "gw-2", Port: 51830}}, []store.Relay{}
	withRelays := func(g store.Gateway) store.Gateway {
		g.Relays = []store.Relay{{Exit: "gw-2", Port: 51830}, {Exit: "gw-3", Port: 51831}} // in port order
		return g
	}
	steps := []struct {
		name string
		u    store.GatewayUpdate
		want store.Gateway
		cred string
	}{
		{"nothing", store.GatewayUpdate{}, *got, "cred-1"},
		{"region", store.GatewayUpdate{Region: &region}, gatewayWith(*got, region, got.Endpoint, "cred-1"), "cred-1"},
		{"endpoint", store.GatewayUpdate{Endpoint: &endpoint}, gatewayWith(*got, region, endpoint, "cred-1"), "cred-1"},
		{"tcp port", store.GatewayUpdate{TCPPort: &tcpPort}, withTCP(gatewayWith(*got, region, endpoint, "cred-1"), tcpPort), "cred-1"},
		{"credential", store.GatewayUpdate{CredentialHash: []byte("cred-1b")}, withTCP(gatewayWith(*got, region, endpoint, "cred-1b"), tcpPort), "cred-1b"},
		{"relays", store.GatewayUpdate{Relays: &relays}, withRelays(withTCP(gatewayWith(*got, region, endpoint, "cred-1b"), tcpPort)), "cred-1b"},
		{"tcp port off", store.GatewayUpdate{TCPPort: &noTCP}, withRelays(gatewayWith(*got, region, endpoint, "cred-1b")), "cred-1b"},
		{"relays off", store.GatewayUpdate{Relays: &noRelays}, gatewayWith(*got, region, endpoint, "cred-1b"), "cred-1b"},
	}
	for _, st := range steps {
		u, err := s.UpdateGateway(ctx, "gw-1", st.u)
		must(t, "UpdateGateway "+st.name, err)
		if !reflect.DeepEqual(*u, st.want) {
			t.Fatalf("UpdateGateway %s: got %+v, want %+v", st.name, *u, st.want)
		}
		byCred, err := s.GatewayByCredential(ctx, []byte(st.cred))
		must(t, "GatewayByCredential after "+st.name, err)
		if !reflect.DeepEqual(byCred, u) {
			t.Fatalf("GatewayByCredential after %s: got %+v, want %+v", st.name, byCred, u)
		}
	}
	_, err = s.GatewayByCredential(ctx, []byte("cred-1"))
	wantCode(t, "GatewayByCredential with the replaced credential", err, errs.NotFound)

	_, err = s.UpdateGateway(ctx, "gw-1", store.GatewayUpdate{CredentialHash: []byte("cred-2")})
	wantCode(t, "UpdateGateway to another gateway's credential", err, errs.Conflict)
	badPort := 65536
	_, err = s.UpdateGateway(ctx, "gw-1", store.GatewayUpdate{TCPPort: &badPort})
	wantCode(t, "UpdateGateway TCP port out of range", err, errs.Invalid)
	for name, bad := range map[string][]store.Relay{"port 0": {{Exit: "gw-2", Port: 0}}, "twice": {{Exit: "gw-2", Port: 1}, {Exit: "gw-3", Port: 1}},
		"no exit": {{Port: 2}}, "comma": {{Exit: "a,b", Port: 3}}} {
		_, err = s.UpdateGateway(ctx, "gw-1", store.GatewayUpdate{Relays: &bad})
		wantCode(t, "UpdateGateway relays "+name, err, errs.Invalid)
	}
	_, err = s.UpdateGateway(ctx, "gw-none", store.GatewayUpdate{Region: &region})
	wantCode(t, "UpdateGateway unknown", err, errs.NotFound)
	other, err := s.GatewayByCredential(ctx, []byte("cred-2"))
	must(t, "GatewayByCredential other", err)
	if other.Region != "us" || other.Endpoint != "198.18.0.2:51820" {
		t.Fatalf("the other gateway changed: %+v", other)
	}
}

// gatewayWith returns g with region, endpoint and credential hash replaced.
func gatewayWith(g store.Gateway, region, endpoint, cred string) store.Gateway {
	g.Region, g.Endpoint, g.CredentialHash = region, endpoint, bytes.Clone([]byte(cred))
	return g
}
