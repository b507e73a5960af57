package tunnel

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/proxy"
)

func TestUserspaceProxies(t *testing.T) {
	clientKey := testKey(t, 1)
	gw := startNetstackGateway(t, clientKey.Public())
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tun, err := Up(ctx, Options{
		Config:      gw.ClientConfig(clientKey),
		Userspace:   true,
		ProxyListen: "127.0.0.1:0",
		HTTPListen:  "127.0.0.1:0",
		Logger:      testLogger(&logs),
	})
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Cleanup(func() { tun.Close() })
	st := tun.Status()
	if !st.Up || st.Mode != "userspace" || st.SOCKSAddr == "" || st.HTTPAddr == "" {
		t.Fatalf("Status: got %+v, want up in userspace mode with proxy addresses", st)
	}
	if !st.LastHandshake.IsZero() {
		t.Errorf("Status.LastHandshake before any traffic: got %v, want zero", st.LastHandshake)
	}

	socks, err := proxy.SOCKS5("tcp", st.SOCKSAddr, nil, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	socksClient := &http.Client{Transport: &http.Transport{DialContext: socks.(proxy.ContextDialer).DialContext}}
	httpProxyURL := &url.URL{Scheme: "http", Host: st.HTTPAddr}
	httpClient := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(httpProxyURL)}}

	tests := []struct {
		name   string
		client *http.Client
		url    string
		want   string
	}{
		{"socks ipv4", socksClient, "http://100.64.0.1/", "host 100.64.0.1"},
		{"socks ipv6", socksClient, "http://[fd00::1]/", "host [fd00::1]"},
		{"socks name resolved through tunnel", socksClient, "http://" + testGatewayName + "/", "host " + testGatewayName},
		{"http proxy ipv4", httpClient, "http://100.64.0.1/x", "host 100.64.0.1"},
		{"http proxy name resolved through tunnel", httpClient, "http://" + testGatewayName + "/", "host " + testGatewayName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.client.Get(tt.url)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tt.want) {
				t.Errorf("GET: got %d %q, want 200 containing %q", resp.StatusCode, body, tt.want)
			}
		})
	}

	t.Run("http proxy CONNECT", func(t *testing.T) {
		c, err := net.Dial("tcp", st.HTTPAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Pipeline the tunneled request right behind CONNECT.
		fmt.Fprintf(c, "CONNECT %s:80 HTTP/1.1\r\nHost: %s:80\r\n\r\nGET / HTTP/1.1\r\nHost: via-connect\r\nConnection: close\r\n\r\n", testGatewayName, testGatewayName)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("CONNECT: got status %d, want 200", resp.StatusCode)
		}
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if want := "host via-connect"; !strings.Contains(string(body), want) {
			t.Errorf("GET over CONNECT: got %q, want it to contain %q", body, want)
		}
	})

	t.Run("socks errors", func(t *testing.T) {
		tests := []struct {
			addr    string
			wantRep byte
		}{
			{"100.64.0.1:81", socksRepConnectionRefused},
			{"nxdomain.nitronet.test:80", socksRepHostUnreachable},
		}
		for _, tt := range tests {
			t.Run(tt.addr, func(t *testing.T) {
				if got := rawSOCKSConnect(t, st.SOCKSAddr, tt.addr); got != tt.wantRep {
					t.Errorf("reply: got %#x, want %#x", got, tt.wantRep)
				}
			})
		}
	})

	t.Run("http proxy rejects origin-form", func(t *testing.T) {
		resp, err := http.Get("http://" + st.HTTPAddr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("got status %d, want 400", resp.StatusCode)
		}
	})

	if got := tun.Status().LastHandshake; got.IsZero() {
		t.Errorf("Status.LastHandshake after traffic: got zero, want a time")
	}
	if err := tun.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := tun.Status(); got.Up {
		t.Errorf("Status after Close: got Up, want down")
	}
	for _, a := range []string{st.SOCKSAddr, st.HTTPAddr} {
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
			t.Errorf("proxy %s still accepts connections after Close", a)
		}
	}
	// No destinations, names or endpoints in the logs.
	out := logs.String()
	for _, secret := range []string{"100.64.0.1", "fd00::1", testGatewayName, "nxdomain", ":" + strconv.Itoa(gw.Port), clientKey.Base64(), clientKey.Hex()} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q:\n%s", secret, out)
		}
	}
}

func TestUserspaceRejectsNonLoopbackListen(t *testing.T) {
	clientKey := testKey(t, 1)
	gw := startNetstackGateway(t, clientKey.Public())
	_, err := Up(context.Background(), Options{Config: gw.ClientConfig(clientKey), Userspace: true, ProxyListen: "0.0.0.0:0", HTTPListen: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("Up: got %v, want a loopback error", err)
	}
}

func TestUpValidates(t *testing.T) {
	key := testKey(t, 1)
	gw := &netstackGateway{Key: testKey(t, 9), Port: 1}
	tests := []struct {
		name    string
		mutate  func(*Options)
		wantErr string
	}{
		{"no key", func(o *Options) { o.Config.Interface.PrivateKey = nil }, "no private key"},
		{"no address", func(o *Options) { o.Config.Interface.Addresses = nil }, "no address"},
		{"no peer", func(o *Options) { o.Config.Peers = nil }, "no peer"},
		{"bad mtu", func(o *Options) { o.Config.Interface.MTU = 1 }, "MTU"},
		{"tun without state dir", func(o *Options) { o.Userspace = false }, "state directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Config: gw.ClientConfig(key), Userspace: true}
			tt.mutate(&o)
			_, err := Up(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Up: got %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

// rawSOCKSConnect sends a SOCKS5 CONNECT for addr and returns the reply code.
func rawSOCKSConnect(t *testing.T, server, addr string) byte {
	t.Helper()
	c, err := net.Dial("tcp", server)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	req := socksRequest{Cmd: socksCmdConnect, Atyp: socksAtypDomain, Host: host, Port: uint16(port)}
	if _, err := c.Write(append([]byte{5, 1, 0}, req.marshal()...)); err != nil {
		t.Fatal(err)
	}
	var reply [2 + 10]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		t.Fatal(err)
	}
	if reply[0] != 5 || reply[1] != 0 {
		t.Fatalf("method reply: got %v, want [5 0]", reply[:2])
	}
	return reply[3]
}
