package peerset

import (
	"net/netip"
	"testing"

	"github.com/overlayd/overlayd/subnet"
)

// TestEarlyPeers: leases of a first list still being read go through the
// lease policy and on to an EarlySink at once (a refused one only as a
// subnet to keep as it is, never as a peer);
// candidates and filter addresses wait for the snapshot, which is sent
// whole as always; each peer is logged once; after the snapshot, early
// leases are ignored.
func TestEarlyPeers(t *testing.T) {
	f := newFixture(t)
	outside := lease(3, "")
	outside.Subnet = netip.MustParsePrefix("10.99.3.0/24")
	f.s.AddEarlyPeers([]subnet.Lease{lease(1, "192.0.2.1"), outside})
	f.s.Step()
	f.s.AddEarlyPeers([]subnet.Lease{lease(2, "")})
	f.s.Step()

	if len(f.rec.early) != 2 {
		t.Fatalf("%d early deliveries, want 2: %+v", len(f.rec.early), f.rec.early)
	}
	tests := []struct {
		call int
		want []netip.Prefix
	}{
		{0, []netip.Prefix{lease(1, "").Subnet}},
		{1, []netip.Prefix{lease(2, "").Subnet}},
	}
	for _, tt := range tests {
		var got []netip.Prefix
		for _, c := range f.rec.early[tt.call] {
			switch {
			case c.Removed:
				t.Errorf("early delivery %d removes %s", tt.call, c.Peer.Subnet)
			case c.Peer.Keep == "":
				got = append(got, c.Peer.Subnet)
			case c.Peer.Subnet != outside.Subnet:
				t.Errorf("early delivery %d keeps %s, want only the refused %s kept", tt.call, c.Peer.Subnet, outside.Subnet)
			}
		}
		if len(got) != len(tt.want) || got[0] != tt.want[0] {
			t.Errorf("early delivery %d: %v, want %v", tt.call, got, tt.want)
		}
	}
	if len(f.rec.replaces) != 0 || len(f.rec.updates) != 0 || len(f.rec.candRepl) != 0 || f.rec.addrsCalls != 0 {
		t.Fatalf("before the snapshot: replaces %d, updates %d, candidate sets %d, filter calls %d; want none",
			len(f.rec.replaces), len(f.rec.updates), len(f.rec.candRepl), f.rec.addrsCalls)
	}

	f.replace(lease(1, "192.0.2.1"), lease(2, ""), outside)
	if len(f.rec.replaces) != 1 || len(f.rec.replaces[0]) != 3 {
		t.Fatalf("snapshot: %+v, want the two peers and the refused subnet kept", f.rec.replaces)
	}
	if len(f.rec.candRepl) != 1 || len(f.rec.candRepl[0]) != 1 {
		t.Errorf("candidates at the snapshot: %+v, want peer 1's", f.rec.candRepl)
	}
	if n := len(f.lines("INFO", "peer added")); n != 2 {
		t.Errorf("%d \"peer added\" lines, want one per peer", n)
	}

	f.s.AddEarlyPeers([]subnet.Lease{lease(4, "")})
	f.s.Step()
	if len(f.rec.early) != 2 || len(f.rec.updates) != 0 {
		t.Errorf("early leases after the snapshot were used: early %d, updates %d", len(f.rec.early), len(f.rec.updates))
	}
}
