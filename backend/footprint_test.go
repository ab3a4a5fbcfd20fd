package backend

import (
	"testing"
	"unsafe"
)

// TestPeerStateLayout guards the size of what the reconciler holds per
// peer (at 100,000 peers every byte is 100 kB): the peer itself, and the
// desired neighbour and FDB claims, which point at their owner instead of
// copying its MAC and destination.
func TestPeerStateLayout(t *testing.T) {
	tests := []struct {
		name string
		size uintptr
		max  uintptr
	}{
		{"peer", unsafe.Sizeof(peer{}), 112},
		{"claimed (desired neighbour or FDB entry)", unsafe.Sizeof(claimed{}), 16},
	}
	for _, tc := range tests {
		if tc.size > tc.max {
			t.Errorf("%s is %d bytes, want at most %d", tc.name, tc.size, tc.max)
		}
	}
}
