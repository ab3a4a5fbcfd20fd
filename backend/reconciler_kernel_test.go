package backend

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/overlayd/overlayd/backend/backendtest"
	"github.com/overlayd/overlayd/peerset"
	"github.com/overlayd/overlayd/subnet"
)

func TestDumpInterruptedIsRetried(t *testing.T) {
	for _, op := range []backendtest.Op{backendtest.OpNeighList, backendtest.OpFDBList, backendtest.OpRouteList} {
		t.Run(string(op), func(t *testing.T) {
			f := newFixture(t)
			f.replace([]subnet.Lease{peerA, peerB})
			f.step()
			f.k.ResetCounts()
			f.k.InterruptNextDump(op)
			f.full()
			if n := f.k.Count(op); n != 2 {
				t.Errorf("%d dumps, want 2 (one interrupted, one retry)", n)
			}
			if n := f.k.Writes(); n != 0 {
				t.Errorf("%d writes: a partial dump was taken for the kernel state", n)
			}
			if !f.r.Status().InSync {
				t.Errorf("not in sync: %+v", f.r.Status())
			}
		})
	}
}

func TestDumpAlwaysInterruptedWritesNothing(t *testing.T) {
	f := newFixture(t)
	f.replace([]subnet.Lease{peerA, peerB})
	f.step()
	g := newFixtureOn(t, f.k)
	g.k.Fail(backendtest.OpNeighList, "", -1, netlink.ErrDumpInterrupted)
	g.k.ResetCounts()
	g.replace([]subnet.Lease{peerA, stalePeer})
	g.step()
	if n := g.k.Writes(); n != 0 {
		t.Fatalf("%d writes without a complete dump", n)
	}
	s := g.r.Status()
	if s.InSync || s.LastError == "" {
		t.Fatalf("status after failed dump: %+v", s)
	}
	if n := value(g.r.metrics.errors[kindNeigh][opDump]); n != 1 {
		t.Errorf("errors_total{neighbour,dump} = %v, want 1", n)
	}
	// Events keep arriving: still no write until a dump completes.
	g.update([]subnet.Event{added(observedPeer)})
	g.step()
	if n := g.k.Writes(); n != 0 {
		t.Fatalf("%d writes on an event before any complete dump", n)
	}
	g.k.ClearFaults()
	g.full()
	if s := g.r.Status(); !s.InSync || s.Counts.PeersProgrammed != 3 {
		t.Fatalf("after the dump recovered: %+v", s.Counts)
	}
}

func TestWarmRestartWritesNothing(t *testing.T) {
	leases := append(manyLeasesIn("10.244", 40), lease("10.244.200.0/24", "192.0.2.2", "56:b3:03:00:ef:bd"))
	tests := []struct {
		name   string
		modify func(*ReconcilerOptions)
		setup  func(k *backendtest.FakeKernel, ext int)
	}{
		{"vxlan peers", func(*ReconcilerOptions) {}, nil},
		{"direct routing", func(o *ReconcilerOptions) { o.DirectRouting = true }, func(k *backendtest.FakeKernel, ext int) {
			k.AddConnected(netip.MustParsePrefix("192.0.2.0/27"), ext) // half the peers
			k.SetDefaultGateway(netip.MustParseAddr("192.0.2.254"), ext)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.modify)
			if tt.setup != nil {
				tt.setup(f.k, f.ext)
			}
			addForeign(t, f)
			f.replace(leases)
			f.step()
			before := f.state()

			g := newFixtureOn(t, f.k, tt.modify)
			g.k.ResetCounts()
			g.run()
			g.replace(leases)
			<-g.r.Synced()
			if n := g.k.Writes(); n != 0 {
				t.Fatalf("restart over a correct kernel wrote %d entries", n)
			}
			if g.state() != before {
				t.Fatalf("kernel changed:\n%s\nwas:\n%s", g.state(), before)
			}
			if s := g.r.Status(); s.Counts.PeersProgrammed != len(leases) {
				t.Fatalf("status %+v", s.Counts)
			}
		})
	}
}

func TestDirectRouting(t *testing.T) {
	f := newFixture(t, func(o *ReconcilerOptions) { o.DirectRouting = true })
	f.k.AddConnected(netip.MustParsePrefix("192.0.2.0/24"), f.ext)
	f.k.SetDefaultGateway(netip.MustParseAddr("192.0.2.254"), f.ext)
	near := observedPeer // 192.0.2.2: same L2 segment
	far := lease("10.244.40.0/24", "198.51.100.7", "0e:00:00:00:00:40")
	f.replace([]subnet.Lease{near, far})
	f.step()
	wantRoutes := []string{
		"10.244.37.0/24 via 192.0.2.2 dev ul0",
		"10.244.40.0/24 via 10.244.40.0 dev flannel.1 onlink",
	}
	if got := f.k.RouteLines(); !slices.Equal(got, wantRoutes) {
		t.Fatalf("routes %q, want %q", got, wantRoutes)
	}
	if got := f.neighLines(); !slices.Equal(got, []string{"10.244.40.0 lladdr 0e:00:00:00:00:40 PERMANENT"}) {
		t.Fatalf("neighbours %q", got)
	}
	if got := f.fdbLines(); !slices.Equal(got, []string{"0e:00:00:00:00:40 dst 198.51.100.7 self permanent"}) {
		t.Fatalf("fdb %q", got)
	}
	if s := f.r.Status(); !s.Peers[0].Direct || s.Peers[1].Direct {
		t.Fatalf("direct flags %+v", s.Peers)
	}

	// The decision is cached until the next full resync.
	lookups := f.k.Count(backendtest.OpRouteGet)
	f.update([]subnet.Event{added(lease("10.244.41.0/24", "192.0.2.2", "0e:00:00:00:00:41"))})
	f.step()
	if n := f.k.Count(backendtest.OpRouteGet) - lookups; n != 0 {
		t.Errorf("%d route lookups for a cached address", n)
	}

	// The far peer becomes reachable directly: a full resync switches it.
	f.k.AddConnected(netip.MustParsePrefix("198.51.100.0/24"), f.ext)
	f.full()
	wantRoutes = []string{
		"10.244.37.0/24 via 192.0.2.2 dev ul0",
		"10.244.40.0/24 via 198.51.100.7 dev ul0",
		"10.244.41.0/24 via 192.0.2.2 dev ul0",
	}
	if got := f.k.RouteLines(); !slices.Equal(got, wantRoutes) {
		t.Fatalf("routes after the switch %q, want %q", got, wantRoutes)
	}
	if got := len(f.neighLines()) + len(f.fdbLines()); got != 0 {
		t.Fatalf("vxlan entries left after switching to direct:\n%s", f.state())
	}

	// A departed direct peer's route on the external link is ours to delete.
	f.update([]subnet.Event{removed(near)})
	f.step()
	if got := f.k.RouteLines(); len(got) != 2 {
		t.Fatalf("routes after removing a direct peer: %q", got)
	}
}

func TestDeviceRecreated(t *testing.T) {
	var calls int
	var f *fixture
	f = newFixture(t, func(o *ReconcilerOptions) {
		o.OnDeviceMissing = func(ctx context.Context) (int, error) {
			calls++
			return f.k.AddLink(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "flannel.1"}, VxlanId: 1}), nil
		}
	})
	f.replace([]subnet.Lease{peerA, observedPeer})
	f.step()
	golden := f.state()
	f.k.DeleteLink("flannel.1")
	f.full()
	if calls != 1 {
		t.Fatalf("OnDeviceMissing called %d times", calls)
	}
	f.dev = linkIndex(t, f.k, "flannel.1")
	if got := f.state(); got != golden {
		t.Fatalf("entries on the new device:\n%s\nwant\n%s", got, golden)
	}
	if !f.r.Status().InSync {
		t.Fatal("not in sync after the device came back")
	}
}

func TestDeviceMissingWithoutCallback(t *testing.T) {
	f := newFixture(t)
	f.replace([]subnet.Lease{peerA})
	f.step()
	f.k.DeleteLink("flannel.1")
	f.full()
	s := f.r.Status()
	if s.InSync || s.LastError == "" {
		t.Fatalf("status with the device gone: %+v", s)
	}
	// Someone (the daemon) recreates it: the next resync adopts the index.
	f.dev = f.k.AddLink(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "flannel.1"}, VxlanId: 1})
	f.full()
	if got := f.k.RouteLines(); !slices.Equal(got, []string{"10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink"}) {
		t.Fatalf("routes %q", got)
	}
	if !f.r.Status().InSync {
		t.Fatalf("not in sync: %+v", f.r.Status())
	}
}

func TestDeviceCallbackFailure(t *testing.T) {
	f := newFixture(t, func(o *ReconcilerOptions) {
		o.OnDeviceMissing = func(context.Context) (int, error) { return 0, errors.New("no permission") }
	})
	f.replace([]subnet.Lease{peerA})
	f.k.DeleteLink("flannel.1")
	f.step()
	if s := f.r.Status(); s.InSync || s.LastError == "" {
		t.Fatalf("status %+v", s)
	}
	if n := f.k.Writes(); n != 0 {
		t.Fatalf("%d writes without a device", n)
	}
}

func TestMalformedUpdateKeepsPeer(t *testing.T) {
	f := newFixture(t)
	f.replace([]subnet.Lease{peerA, peerB})
	f.step()
	golden := f.state()
	broken := peerA
	broken.Attrs.BackendData = []byte(`{"VtepMAC":"not a mac"}`)
	f.k.ResetCounts()
	f.update([]subnet.Event{added(broken), added(broken)})
	f.step()
	if f.state() != golden || f.k.Writes() != 0 {
		t.Fatalf("a malformed update changed the kernel:\n%s", f.state())
	}
	if n := len(f.log.Lines("WARN", "lease=10.244.1.0-24")); n != 1 {
		t.Errorf("%d warnings for the same malformed lease, want 1", n)
	}
	otherBackend := peerA
	otherBackend.Attrs.BackendType = "host-gw"
	f.update([]subnet.Event{added(otherBackend)})
	f.step()
	if got := f.k.RouteLines(); !slices.Equal(got, []string{"10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"}) {
		t.Fatalf("a lease that is no longer vxlan left routes %q", got)
	}
}

func TestSharedMACFollowsNewestPeer(t *testing.T) {
	f := newFixture(t)
	clone := lease("10.244.3.0/24", "192.0.2.33", "0e:00:00:00:00:01") // peerA's MAC
	f.replace([]subnet.Lease{peerA})
	f.step()
	f.update([]subnet.Event{added(clone)})
	f.step()
	if got := f.fdbLines(); !slices.Equal(got, []string{"0e:00:00:00:00:01 dst 192.0.2.33 self permanent"}) {
		t.Fatalf("fdb %q", got)
	}
	f.update([]subnet.Event{removed(clone)})
	f.step()
	if got := f.fdbLines(); !slices.Equal(got, []string{"0e:00:00:00:00:01 dst 192.0.2.11 self permanent"}) {
		t.Fatalf("fdb after the clone left %q", got)
	}
	f.update([]subnet.Event{removed(peerA)})
	f.step()
	if got := f.state(); got != "\n--\n\n--\n" {
		t.Fatalf("entries left:\n%s", got)
	}
}

// TestPeerDst: the FDB entry goes to the destination the peer set chose
// (a verified private address here); a subnet to keep is skipped.
func TestPeerDst(t *testing.T) {
	f := newFixture(t)
	a := peersFor(f.r, []subnet.Lease{peerA})[0]
	a.Dst = netip.MustParseAddr("203.0.113.9")
	noDst := peerset.Peer{Subnet: peerB.Subnet, Keep: "no underlay address for the FDB entry"}
	f.r.ReplacePeers([]peerset.Peer{a, noDst})
	f.step()
	if got := f.fdbLines(); !slices.Equal(got, []string{"0e:00:00:00:00:01 dst 203.0.113.9 self permanent"}) {
		t.Fatalf("fdb %q", got)
	}
	if n := f.r.Status().Counts.SkippedLeases; n != 1 {
		t.Fatalf("%d skipped, want the lease without an underlay address", n)
	}
}

// TestRestartKeepsPeersWhoseLeaseIsUnusable: a node restarted while a
// peer's lease is unreadable (bad JSON) or malformed (bad VtepMAC) keeps
// that peer's entries, as a running node does; they go once the key does.
func TestRestartKeepsPeersWhoseLeaseIsUnusable(t *testing.T) {
	good := lease("10.244.1.0/24", "192.0.2.1", "02:00:00:00:00:01")
	tests := []struct {
		name string
		bad  subnet.Lease
	}{
		{"unreadable value", subnet.Lease{Subnet: netip.MustParsePrefix("10.244.2.0/24"), Unreadable: true}},
		{"malformed VtepMAC", func() subnet.Lease {
			l := lease("10.244.2.0/24", "192.0.2.2", "02:00:00:00:00:02")
			l.Attrs.BackendData = []byte(`{"VNI":1,"VtepMAC":"not-a-mac"}`)
			return l
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.replace([]subnet.Lease{good, lease("10.244.2.0/24", "192.0.2.2", "02:00:00:00:00:02")})
			f.step()
			before := f.state()

			g := newFixtureOn(t, f.k)
			g.k.ResetCounts()
			g.replace([]subnet.Lease{good, tt.bad})
			g.full()
			if n := g.k.Writes(); n != 0 || g.state() != before {
				t.Fatalf("restart with an unusable lease wrote %d entries:\n%s\nwas:\n%s", n, g.state(), before)
			}
			g.update([]subnet.Event{removed(tt.bad)})
			g.step()
			for _, l := range append(g.neighLines(), g.fdbLines()...) {
				if strings.Contains(l, "10.244.2.0") || strings.Contains(l, "02:00:00:00:00:02") {
					t.Fatalf("entry of the deleted lease left: %s\n%s", l, g.state())
				}
			}
			if strings.Contains(g.state(), "10.244.2.0/24") {
				t.Fatalf("route of the deleted lease left:\n%s", g.state())
			}
		})
	}
}
