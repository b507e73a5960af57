package tunnel

import "testing"

func TestHopMTU(t *testing.T) {
	tests := []struct{ entry, want, got int }{
		{0, 0, DefaultMTU - hopOverhead},
		{1420, 1420, 1340},
		{1500, 1280, 1280}, // the exit's own MTU fits already
		{1280, 0, 1200},
	}
	for _, tt := range tests {
		if got := hopMTU(tt.entry, tt.want); got != tt.got {
			t.Errorf("hopMTU(%d, %d): got %d, want %d", tt.entry, tt.want, got, tt.got)
		}
	}
}
