package backend

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/overlayd/overlayd/subnet"
)

// TestDiffFindsWhatAFullPassMustSync checks the read-only half of a full
// pass (tracker.diff): each table reports as kept exactly the desired
// entries the believed state holds, and as to do every other desired key,
// including one whose entry is right but whose peer still shows it
// pending (its settle is a write of the pass: the peer becomes
// programmed).
func TestDiffFindsWhatAFullPassMustSync(t *testing.T) {
	macB := [6]byte{0x0e, 0, 0, 0, 0, 0x02}
	tests := []struct {
		name   string
		modify func(f *fixture)
		// kept and todo per table: neighbour, FDB, route.
		kept      [3]int
		neighTodo []netip.Addr
		fdbTodo   [][6]byte
		routeTodo []netip.Prefix
	}{
		{"in sync", func(*fixture) {}, [3]int{2, 2, 2}, nil, nil, nil},
		{"a neighbour with another MAC", func(f *fixture) {
			ip := addr16Of(netip.MustParseAddr("10.244.1.0"))
			f.r.believed.neigh[ip] = believedNeigh{mac: macB, state: f.r.believed.neigh[ip].state}
		}, [3]int{1, 2, 2}, []netip.Addr{netip.MustParseAddr("10.244.1.0")}, nil, nil},
		{"an FDB entry missing", func(f *fixture) {
			delete(f.r.believed.fdb, macB)
		}, [3]int{2, 1, 2}, nil, [][6]byte{macB}, nil},
		{"an FDB entry with a second destination", func(f *fixture) {
			f.r.believed.fdb[macB] = f.r.believed.fdb[macB].appended(netip.MustParseAddr("192.0.2.99"))
		}, [3]int{2, 1, 2}, nil, [][6]byte{macB}, nil},
		{"a route through another gateway", func(f *fixture) {
			k := routeKeyOf(netip.MustParsePrefix("10.244.2.0/24"), 0)
			b := f.r.believed.route[k]
			b.gw = addr16Of(netip.MustParseAddr("10.244.2.1"))
			f.r.believed.route[k] = b
		}, [3]int{2, 2, 1}, nil, nil, []netip.Prefix{netip.MustParsePrefix("10.244.2.0/24")}},
		{"a peer whose route is in place but pending", func(f *fixture) {
			p := f.r.want.peers[netip.MustParsePrefix("10.244.2.0/24")]
			f.r.setPending(p, maskOf(kindRoute), errors.New("injected"))
		}, [3]int{2, 2, 1}, nil, nil, []netip.Prefix{netip.MustParsePrefix("10.244.2.0/24")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.replace(leasesAB())
			f.step()
			tt.modify(f)
			dn, df, dr := f.r.neigh.diff(), f.r.fdb.diff(), f.r.route.diff()
			if got := [3]int{dn.kept, df.kept, dr.kept}; got != tt.kept {
				t.Errorf("kept %v, want %v", got, tt.kept)
			}
			if dn.all || df.all || dr.all {
				t.Errorf("a diff of two peers asks to sync every key")
			}
			neigh := make([]netip.Addr, 0, len(dn.todo))
			for _, k := range dn.todo {
				neigh = append(neigh, k.addr())
			}
			routes := make([]netip.Prefix, 0, len(dr.todo))
			for _, k := range dr.todo {
				routes = append(routes, k.dst())
			}
			if !slices.Equal(neigh, tt.neighTodo) || !slices.Equal(df.todo, tt.fdbTodo) || !slices.Equal(routes, tt.routeTodo) {
				t.Errorf("to do: neighbours %v, FDB %v, routes %v; want %v, %v, %v",
					neigh, df.todo, routes, tt.neighTodo, tt.fdbTodo, tt.routeTodo)
			}
			// The full pass repairs what the diff found, and then finds
			// nothing more.
			f.r.requestDump(dumpFailure)
			f.full()
			if s := f.r.Status(); s.Counts.PeersProgrammed != 2 {
				t.Errorf("after the full pass %d peers programmed, want 2", s.Counts.PeersProgrammed)
			}
			if dn, df, dr := f.r.neigh.diff(), f.r.fdb.diff(), f.r.route.diff(); len(dn.todo)+len(df.todo)+len(dr.todo) != 0 {
				t.Errorf("after the full pass still to do: %v %v %v", dn.todo, df.todo, dr.todo)
			}
		})
	}
}

// TestDiffPastItsBoundSyncsEverything: a first sync of more keys than a
// diff collects writes every entry (the pass syncs the desired keys as it
// reads them).
func TestDiffPastItsBoundSyncsEverything(t *testing.T) {
	f := newFixture(t, bigNetwork)
	n := maxDiffKeys + 100
	f.replace(manyLeases(n))
	f.r.applyPending()
	if d := f.r.route.diff(); !d.all || len(d.todo) != maxDiffKeys {
		t.Fatalf("diff of %d missing routes: all=%v with %d keys, want all with %d", n, d.all, len(d.todo), maxDiffKeys)
	}
	f.step()
	if s := f.r.Status(); s.Counts.PeersProgrammed != n {
		t.Fatalf("%d of %d peers programmed after the first pass", s.Counts.PeersProgrammed, n)
	}
	if got := len(f.k.RouteLines()); got != n {
		t.Fatalf("%d routes in the kernel, want %d", got, n)
	}
}

// leasesAB are two peers, 10.244.1.0/24 and 10.244.2.0/24.
func leasesAB() []subnet.Lease {
	return []subnet.Lease{peerA, peerB}
}
