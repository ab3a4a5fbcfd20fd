package backend

import (
	"context"
	"testing"

	"github.com/overlayd/overlayd/subnet"
)

const benchPeers = 10000

// syncedFixture returns a fixture with n peers programmed and in sync.
func syncedFixture(b *testing.B, n int) (*fixture, []subnet.Lease) {
	b.Helper()
	f := newFixture(b, bigNetwork, func(o *ReconcilerOptions) { o.Logger = nilLogger() })
	leases := manyLeases(n)
	f.replace(leases)
	f.step()
	if s := f.r.Status(); !s.InSync || s.Counts.PeersProgrammed != n {
		b.Fatalf("setup not in sync: %+v", s.Counts)
	}
	return f, leases
}

// BenchmarkFullResyncIdle10k is a periodic resync at 10,000 peers (30,000
// entries) with nothing to repair: three dumps of the fake kernel and the
// O(N) diff, zero writes.
func BenchmarkFullResyncIdle10k(b *testing.B) {
	f, _ := syncedFixture(b, benchPeers)
	ctx := context.Background() // stepped directly: fixture.step checks invariants over every peer
	f.k.ResetCounts()
	b.ReportAllocs()
	for b.Loop() {
		f.clock.Advance(fullDue(f.r.opts))
		f.r.step(ctx)
	}
	if n := f.k.Writes(); n != 0 {
		b.Fatalf("idle resync wrote %d entries", n)
	}
}

// BenchmarkIncrementalPass10k is one peer event (a VTEP MAC change: one
// neighbour replace, one FDB add, one FDB delete) at 10,000 peers.
func BenchmarkIncrementalPass10k(b *testing.B) {
	f, leases := syncedFixture(b, benchPeers)
	ctx := context.Background()
	one := leases[benchPeers/2]
	macs := [2]string{`{"VNI":1,"VtepMAC":"0e:00:00:00:ff:01"}`, `{"VNI":1,"VtepMAC":"0e:00:00:00:ff:02"}`}
	events := make([]subnet.Event, 1)
	f.k.ResetCounts()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		one.Attrs.BackendData = []byte(macs[i%2])
		events[0] = added(one)
		f.update(events)
		f.r.step(ctx)
		i++
	}
	if n, want := f.k.Writes(), 3*i; n != want {
		b.Fatalf("%d writes for %d events, want %d", n, i, want)
	}
}
