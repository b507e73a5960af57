package tunnel

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"testing"
)

func TestReadSOCKSGreeting(t *testing.T) {
	tests := []struct {
		name       string
		in         []byte
		wantNoAuth bool
		wantErr    bool
	}{
		{"no auth", []byte{5, 1, 0}, true, false},
		{"no auth among others", []byte{5, 3, 2, 1, 0}, true, false},
		{"only user/pass", []byte{5, 1, 2}, false, false},
		{"socks4", []byte{4, 1, 0}, false, true},
		{"no methods", []byte{5, 0}, false, true},
		{"truncated", []byte{5, 2, 0}, false, true},
		{"empty", nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readSOCKSGreeting(bytes.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tt.wantErr)
			}
			if got != tt.wantNoAuth {
				t.Errorf("noAuth: got %v, want %v", got, tt.wantNoAuth)
			}
		})
	}
}

func TestReadSOCKSRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    socksRequest
		wantRep byte  // reply code for a *socksError; 0 with wantErr for I/O errors
		wantErr error // non-nil: errors.Is target
		fail    bool
	}{
		{name: "ipv4", in: []byte{5, 1, 0, 1, 100, 64, 0, 1, 0, 80},
			want: socksRequest{Cmd: 1, Atyp: 1, Host: "100.64.0.1", Port: 80}},
		{name: "ipv6", in: append(append([]byte{5, 1, 0, 4}, bytes.Repeat([]byte{0}, 15)...), 1, 1, 187),
			want: socksRequest{Cmd: 1, Atyp: 4, Host: "::1", Port: 443}},
		{name: "domain", in: append(append([]byte{5, 1, 0, 3, 7}, "gw.test"...), 0x1f, 0x90),
			want: socksRequest{Cmd: 1, Atyp: 3, Host: "gw.test", Port: 8080}},
		{name: "bind", in: []byte{5, 2, 0, 1, 1, 2, 3, 4, 0, 1}, fail: true, wantRep: socksRepCommandNotSupported},
		{name: "udp associate", in: []byte{5, 3, 0, 1, 1, 2, 3, 4, 0, 1}, fail: true, wantRep: socksRepCommandNotSupported},
		{name: "bad atyp", in: []byte{5, 1, 0, 9, 1, 2, 3, 4, 0, 1}, fail: true, wantRep: socksRepAddrNotSupported},
		{name: "bad version", in: []byte{4, 1, 0, 1, 1, 2, 3, 4, 0, 1}, fail: true},
		{name: "reserved set", in: []byte{5, 1, 1, 1, 1, 2, 3, 4, 0, 1}, fail: true, wantRep: socksRepGeneralFailure},
		{name: "empty domain", in: []byte{5, 1, 0, 3, 0, 0, 80}, fail: true, wantRep: socksRepHostUnreachable},
		{name: "domain with space", in: []byte{5, 1, 0, 3, 3, 'a', ' ', 'b', 0, 80}, fail: true, wantRep: socksRepHostUnreachable},
		{name: "truncated address", in: []byte{5, 1, 0, 1, 1, 2}, fail: true, wantErr: io.ErrUnexpectedEOF},
		{name: "truncated port", in: []byte{5, 1, 0, 1, 1, 2, 3, 4, 0}, fail: true, wantErr: io.ErrUnexpectedEOF},
		{name: "empty", in: nil, fail: true, wantErr: io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readSOCKSRequest(bytes.NewReader(tt.in))
			if !tt.fail {
				if err != nil {
					t.Fatalf("error: got %v, want nil", err)
				}
				if got != tt.want {
					t.Errorf("request: got %+v, want %+v", got, tt.want)
				}
				if m := got.marshal(); !bytes.Equal(m, tt.in) {
					t.Errorf("marshal: got %v, want %v", m, tt.in)
				}
				return
			}
			if err == nil {
				t.Fatalf("error: got nil, want one")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error: got %v, want %v", err, tt.wantErr)
			}
			var se *socksError
			rep := byte(0)
			if errors.As(err, &se) {
				rep = se.Rep
			}
			if rep != tt.wantRep {
				t.Errorf("reply code: got %#x, want %#x", rep, tt.wantRep)
			}
		})
	}
}

func TestReadSOCKSRequestLeavesTrailingData(t *testing.T) {
	in := append([]byte{5, 1, 0, 1, 100, 64, 0, 1, 0, 80}, "GET /"...)
	r := bytes.NewReader(in)
	if _, err := readSOCKSRequest(r); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if got, want := string(rest), "GET /"; got != want {
		t.Errorf("trailing data: got %q, want %q", got, want)
	}
}

func TestSOCKSReply(t *testing.T) {
	tests := []struct {
		name string
		rep  byte
		addr string
		want []byte
	}{
		{"zero", socksRepHostUnreachable, "", []byte{5, 4, 0, 1, 0, 0, 0, 0, 0, 0}},
		{"ipv4", socksRepSuccess, "100.64.0.2:1234", []byte{5, 0, 0, 1, 100, 64, 0, 2, 0x04, 0xd2}},
		{"ipv6", socksRepSuccess, "[fd00::2]:1", append(append([]byte{5, 0, 0, 4, 0xfd}, make([]byte, 14)...), 2, 0, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ap := parseAddrPortOrZero(tt.addr)
			if got := socksReply(tt.rep, ap); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzSOCKSRequest checks that the request parser never panics, never reads
// past the request, and that what it accepts re-encodes to the same bytes.
func FuzzSOCKSRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 1, 100, 64, 0, 1, 0, 80})
	f.Add(append(append([]byte{5, 1, 0, 3, 7}, "gw.test"...), 0, 80))
	f.Add(append(append([]byte{5, 1, 0, 4}, bytes.Repeat([]byte{0xfd}, 16)...), 0, 80))
	f.Add([]byte{5, 2, 0, 1, 1, 2, 3, 4, 0, 1})
	f.Add([]byte{5, 1, 0, 3, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		req, err := readSOCKSRequest(r)
		if err != nil {
			return
		}
		consumed := len(in) - r.Len()
		if m := req.marshal(); !bytes.Equal(m, in[:consumed]) {
			t.Fatalf("marshal: got %v, want %v", m, in[:consumed])
		}
		if req.Cmd != socksCmdConnect {
			t.Fatalf("accepted command %d, want only CONNECT", req.Cmd)
		}
	})
}

func parseAddrPortOrZero(s string) (ap netip.AddrPort) {
	if s != "" {
		ap = netip.MustParseAddrPort(s)
	}
	return ap
}
