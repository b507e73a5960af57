package tunnel

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"
)

func TestPickFastest(t *testing.T) {
	errDown := errors.New("down")
	tests := []struct {
		name      string
		rtts      map[string]time.Duration // missing: probe fails
		cands     []string
		want      string
		wantOrder []string
		wantErr   bool
	}{
		{name: "fastest wins", rtts: map[string]time.Duration{"a": 30 * time.Millisecond, "b": 10 * time.Millisecond, "c": 20 * time.Millisecond},
			cands: []string{"a", "b", "c"}, want: "b", wantOrder: []string{"b", "c", "a"}},
		{name: "failures last", rtts: map[string]time.Duration{"b": 50 * time.Millisecond},
			cands: []string{"a", "b", "c"}, want: "b", wantOrder: []string{"b", "a", "c"}},
		{name: "tie keeps order", rtts: map[string]time.Duration{"a": time.Millisecond, "b": time.Millisecond},
			cands: []string{"a", "b"}, want: "a", wantOrder: []string{"a", "b"}},
		{name: "all fail", rtts: nil, cands: []string{"a", "b"}, wantErr: true, wantOrder: []string{"a", "b"}},
		{name: "none", cands: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cands []Candidate
			for _, n := range tt.cands {
				cands = append(cands, Candidate{Name: n})
			}
			probe := func(_ context.Context, c Candidate) (time.Duration, error) {
				if d, ok := tt.rtts[c.Name]; ok {
					return d, nil
				}
				return 0, errDown
			}
			got, results, err := PickFastest(context.Background(), cands, probe)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error: got %v, want error %v", err, tt.wantErr)
			}
			if got.Name != tt.want {
				t.Errorf("pick: got %q, want %q", got.Name, tt.want)
			}
			var order []string
			for _, r := range results {
				order = append(order, r.Candidate.Name)
				if _, ok := tt.rtts[r.Candidate.Name]; ok != (r.Err == nil) {
					t.Errorf("result %s: got err %v, want success %v", r.Candidate.Name, r.Err, ok)
				}
			}
			if len(order) != len(tt.wantOrder) {
				t.Fatalf("results: got %v, want %v", order, tt.wantOrder)
			}
			for i := range order {
				if order[i] != tt.wantOrder[i] {
					t.Fatalf("results: got %v, want %v", order, tt.wantOrder)
				}
			}
		})
	}
}

func TestHandshakeProbe(t *testing.T) {
	clientKey := testKey(t, 1)
	gw := startNetstackGateway(t, clientKey.Public())
	// A UDP port on loopback that never answers.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	good := Candidate{Name: "good", Endpoint: net.JoinHostPort("127.0.0.1", strconv.Itoa(gw.Port)), PublicKey: gw.Key.Public()}
	mute := Candidate{Name: "silent", Endpoint: silent.LocalAddr().String(), PublicKey: gw.Key.Public()}
	unknownKey := Candidate{Name: "wrong key", Endpoint: good.Endpoint, PublicKey: testKey(t, 7).Public()}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	probe := HandshakeProbe(clientKey, nil)
	got, results, err := PickFastest(ctx, []Candidate{mute, unknownKey, good}, probe)
	if err != nil {
		t.Fatalf("PickFastest: %v", err)
	}
	if got.Name != "good" {
		t.Errorf("pick: got %q, want good", got.Name)
	}
	if len(results) != 3 {
		t.Fatalf("results: got %d, want 3", len(results))
	}
	if r := results[0]; r.Err != nil || r.RTT <= 0 || r.RTT > time.Second {
		t.Errorf("good result: got RTT %v err %v, want a positive RTT under 1s", r.RTT, r.Err)
	}
	for _, r := range results[1:] {
		if r.Err == nil || !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Errorf("%s: got err %v, want a deadline error", r.Candidate.Name, r.Err)
		}
	}
}
