package backend

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/backend/backendtest"
	"github.com/overlayd/overlayd/subnet"
)

// The peer of docs/compatibility.md: what flanneld v0.28.8 left on node 1.
var observedPeer = lease("10.244.37.0/24", "192.0.2.2", "56:b3:03:00:ef:bd")

func TestDesiredEntriesGolden(t *testing.T) {
	hostGW := lease("10.244.50.0/24", "192.0.2.50", "0e:00:00:00:00:50")
	hostGW.Attrs.BackendType = "host-gw"
	badMAC := lease("10.244.51.0/24", "192.0.2.51", "zz:00:00:00:00:51")
	noData := lease("10.244.52.0/24", "192.0.2.52", "0e:00:00:00:00:52")
	noData.Attrs.BackendData = nil
	outside := lease("10.9.0.0/24", "192.0.2.53", "0e:00:00:00:00:53")
	own := lease("10.244.99.0/24", "192.0.2.1", "d6:87:b6:fa:f7:31")
	v011 := lease("10.244.7.0/24", "192.0.2.7", "0e:0a:46:7c:72:f9")
	v011.Attrs.BackendData = []byte(`{"VtepMAC":"0e:0a:46:7c:72:f9"}`)

	tests := []struct {
		name   string
		leases []subnet.Lease
		neigh  []string
		fdb    []string
		routes []string
		warns  int
	}{
		{
			name:   "flannel-observed peer",
			leases: []subnet.Lease{observedPeer},
			neigh:  []string{"10.244.37.0 lladdr 56:b3:03:00:ef:bd PERMANENT"},
			fdb:    []string{"56:b3:03:00:ef:bd dst 192.0.2.2 self permanent"},
			routes: []string{"10.244.37.0/24 via 10.244.37.0 dev flannel.1 onlink"},
		},
		{
			name:   "v0.11 BackendData without VNI",
			leases: []subnet.Lease{v011},
			neigh:  []string{"10.244.7.0 lladdr 0e:0a:46:7c:72:f9 PERMANENT"},
			fdb:    []string{"0e:0a:46:7c:72:f9 dst 192.0.2.7 self permanent"},
			routes: []string{"10.244.7.0/24 via 10.244.7.0 dev flannel.1 onlink"},
		},
		{
			name:   "non-vxlan, malformed, outside and own leases skipped, others programmed",
			leases: []subnet.Lease{hostGW, badMAC, observedPeer, noData, outside, own},
			neigh:  []string{"10.244.37.0 lladdr 56:b3:03:00:ef:bd PERMANENT"},
			fdb:    []string{"56:b3:03:00:ef:bd dst 192.0.2.2 self permanent"},
			routes: []string{"10.244.37.0/24 via 10.244.37.0 dev flannel.1 onlink"},
			warns:  3,
		},
		{
			name:   "nothing",
			leases: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.replace(tt.leases)
			f.step()
			if got := f.neighLines(); !sameLines(got, tt.neigh) {
				t.Errorf("ip neigh:\n got %q\nwant %q", got, tt.neigh)
			}
			if got := f.fdbLines(); !sameLines(got, tt.fdb) {
				t.Errorf("bridge fdb:\n got %q\nwant %q", got, tt.fdb)
			}
			if got := f.k.RouteLines(); !sameLines(got, tt.routes) {
				t.Errorf("ip route:\n got %q\nwant %q", got, tt.routes)
			}
			warns := f.log.Lines("WARN", "skipping malformed peer lease")
			if len(warns) != tt.warns {
				t.Errorf("got %d malformed-lease warnings, want %d:\n%s", len(warns), tt.warns, f.log)
			}
			for _, w := range warns {
				if !strings.Contains(w, "lease=10.") || !strings.Contains(w, "reason=") {
					t.Errorf("warning lacks lease key or reason: %s", w)
				}
			}
			if s := f.r.Status(); !s.InSync || !s.Synced || s.Counts.SkippedLeases != tt.warns {
				t.Errorf("status: InSync %v Synced %v skipped %d", s.InSync, s.Synced, s.Counts.SkippedLeases)
			}
		})
	}
}

func TestPeerChanges(t *testing.T) {
	a := lease("10.244.1.0/24", "192.0.2.11", "0e:00:00:00:00:01")
	b := lease("10.244.2.0/24", "192.0.2.12", "0e:00:00:00:00:02")
	aNewMAC := lease("10.244.1.0/24", "192.0.2.11", "0e:00:00:00:00:aa")
	aNewIP := lease("10.244.1.0/24", "192.0.2.99", "0e:00:00:00:00:aa")
	steps := []struct {
		name   string
		events []subnet.Event
		neigh  []string
		fdb    []string
		routes []string
		writes map[backendtest.Op]int
	}{
		{
			name:   "add two peers",
			events: []subnet.Event{added(a), added(b)},
			neigh:  []string{"10.244.1.0 lladdr 0e:00:00:00:00:01 PERMANENT", "10.244.2.0 lladdr 0e:00:00:00:00:02 PERMANENT"},
			fdb:    []string{"0e:00:00:00:00:01 dst 192.0.2.11 self permanent", "0e:00:00:00:00:02 dst 192.0.2.12 self permanent"},
			routes: []string{"10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink", "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"},
			writes: map[backendtest.Op]int{backendtest.OpNeighSet: 2, backendtest.OpFDBSet: 2, backendtest.OpRouteReplace: 2},
		},
		{
			name:   "same lease again writes nothing",
			events: []subnet.Event{added(a)},
			neigh:  []string{"10.244.1.0 lladdr 0e:00:00:00:00:01 PERMANENT", "10.244.2.0 lladdr 0e:00:00:00:00:02 PERMANENT"},
			fdb:    []string{"0e:00:00:00:00:01 dst 192.0.2.11 self permanent", "0e:00:00:00:00:02 dst 192.0.2.12 self permanent"},
			routes: []string{"10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink", "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"},
			writes: map[backendtest.Op]int{},
		},
		{
			name:   "MAC change replaces the neighbour and removes the old FDB entry",
			events: []subnet.Event{added(aNewMAC)},
			neigh:  []string{"10.244.1.0 lladdr 0e:00:00:00:00:aa PERMANENT", "10.244.2.0 lladdr 0e:00:00:00:00:02 PERMANENT"},
			fdb:    []string{"0e:00:00:00:00:02 dst 192.0.2.12 self permanent", "0e:00:00:00:00:aa dst 192.0.2.11 self permanent"},
			routes: []string{"10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink", "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"},
			writes: map[backendtest.Op]int{backendtest.OpNeighSet: 1, backendtest.OpFDBSet: 1, backendtest.OpFDBDel: 1},
		},
		{
			name:   "PublicIP change replaces the FDB entry only",
			events: []subnet.Event{added(aNewIP)},
			neigh:  []string{"10.244.1.0 lladdr 0e:00:00:00:00:aa PERMANENT", "10.244.2.0 lladdr 0e:00:00:00:00:02 PERMANENT"},
			fdb:    []string{"0e:00:00:00:00:02 dst 192.0.2.12 self permanent", "0e:00:00:00:00:aa dst 192.0.2.99 self permanent"},
			routes: []string{"10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink", "10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"},
			writes: map[backendtest.Op]int{backendtest.OpFDBSet: 1},
		},
		{
			name:   "removal deletes all three entries",
			events: []subnet.Event{removed(aNewIP)},
			neigh:  []string{"10.244.2.0 lladdr 0e:00:00:00:00:02 PERMANENT"},
			fdb:    []string{"0e:00:00:00:00:02 dst 192.0.2.12 self permanent"},
			routes: []string{"10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"},
			writes: map[backendtest.Op]int{backendtest.OpNeighDel: 1, backendtest.OpFDBDel: 1, backendtest.OpRouteDel: 1},
		},
		{
			name:   "removal of an unknown subnet writes nothing",
			events: []subnet.Event{removed(a)},
			neigh:  []string{"10.244.2.0 lladdr 0e:00:00:00:00:02 PERMANENT"},
			fdb:    []string{"0e:00:00:00:00:02 dst 192.0.2.12 self permanent"},
			routes: []string{"10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"},
			writes: map[backendtest.Op]int{},
		},
	}
	f := newFixture(t)
	f.replace(nil)
	f.step()
	for _, s := range steps {
		f.k.ResetCounts()
		f.update(s.events)
		f.step()
		if got := f.neighLines(); !sameLines(got, s.neigh) {
			t.Errorf("%s: ip neigh:\n got %q\nwant %q", s.name, got, s.neigh)
		}
		if got := f.fdbLines(); !sameLines(got, s.fdb) {
			t.Errorf("%s: bridge fdb:\n got %q\nwant %q", s.name, got, s.fdb)
		}
		if got := f.k.RouteLines(); !sameLines(got, s.routes) {
			t.Errorf("%s: ip route:\n got %q\nwant %q", s.name, got, s.routes)
		}
		for _, op := range backendtest.WriteOps() {
			if got := f.k.Count(op); got != s.writes[op] {
				t.Errorf("%s: %d %s writes, want %d", s.name, got, op, s.writes[op])
			}
		}
	}
}

func TestOrderOfWrites(t *testing.T) {
	rec := &recordingKernel{}
	f := newFixture(t, func(o *ReconcilerOptions) {
		rec.FakeKernel = o.Kernel.(*backendtest.FakeKernel)
		o.Kernel = rec
	})
	f.replace([]subnet.Lease{observedPeer})
	f.step()
	f.update([]subnet.Event{removed(observedPeer)})
	f.step()
	want := []string{"neighbour-add", "fdb-add", "route-add", "route-del", "fdb-del", "neighbour-del"}
	if strings.Join(rec.ops, " ") != strings.Join(want, " ") {
		t.Fatalf("writes %q, want %q", rec.ops, want)
	}
}

func TestNothingBeforeFirstSnapshot(t *testing.T) {
	// A stale entry from a previous run: ours to delete, but only once we
	// know the complete peer set.
	g := restartedOverStale(t)
	g.k.ResetCounts()

	g.update([]subnet.Event{added(observedPeer)})
	g.step()
	g.step()
	for _, op := range append(backendtest.WriteOps(), backendtest.OpNeighList, backendtest.OpRouteList) {
		if n := g.k.Count(op); n != 0 {
			t.Fatalf("%d %s calls before the first snapshot", n, op)
		}
	}
	select {
	case <-g.r.Synced():
		t.Fatal("Synced before the first snapshot")
	default:
	}
	g.replace([]subnet.Lease{observedPeer})
	g.step()
	want := "10.244.37.0/24 via 10.244.37.0 dev flannel.1 onlink"
	if got := g.k.RouteLines(); len(got) != 1 || got[0] != want {
		t.Fatalf("routes after snapshot: %q, want only %q", got, want)
	}
}

func TestBurstCoalescedIntoOnePass(t *testing.T) {
	f := newFixture(t, bigNetwork)
	f.replace(nil)
	f.step()
	for _, l := range manyLeases(1000) {
		f.update([]subnet.Event{added(l)})
	}
	before := value(f.r.metrics.passes[passIncremental])
	f.step()
	if n := value(f.r.metrics.passes[passIncremental]) - before; n != 1 {
		t.Fatalf("1000 queued events took %v passes, want 1", n)
	}
	if got := len(f.k.RouteLines()); got != 1000 {
		t.Fatalf("%d routes, want 1000", got)
	}
}

func TestBurstWhileRunning(t *testing.T) {
	f := newFixture(t, bigNetwork)
	f.run()
	f.replace(nil)
	leases := manyLeases(1000)
	for _, l := range leases {
		f.update([]subnet.Event{added(l)})
	}
	f.waitFor("1000 peers programmed", func() bool {
		s := f.r.Status()
		return s.InSync && s.Counts.PeersProgrammed == 1000
	})
	passes := value(f.r.metrics.passes[passIncremental]) + value(f.r.metrics.passes[passFull])
	if passes > 200 {
		t.Errorf("1000 events took %v passes; they should coalesce", passes)
	}
	if n := f.k.Writes(); n != 3000 {
		t.Errorf("%d writes for 1000 new peers, want 3000", n)
	}
	// At this scale the log must aggregate, not print a line per peer.
	if n := len(f.log.Lines("INFO", "peer added")); n > maxPeerLines*20 {
		t.Errorf("%d per-peer log lines", n)
	}
	t.Logf("1000 events in %v passes", passes)
}

func TestStatusAndMetrics(t *testing.T) {
	f := newFixture(t)
	f.replace([]subnet.Lease{observedPeer, lease("10.244.2.0/24", "192.0.2.12", "0e:00:00:00:00:02")})
	f.step()
	s := f.r.Status()
	wantCounts := StatusCounts{Peers: 2, PeersProgrammed: 2,
		Desired: EntryCounts{2, 2, 2}, Kernel: EntryCounts{2, 2, 2}}
	if s.Counts != wantCounts || !s.InSync || !s.Synced || s.LastPassKind != "full" || s.LastError != "" {
		t.Fatalf("status %+v", s)
	}
	p := s.Peers[1]
	if p.Subnet.String() != "10.244.37.0/24" || p.MAC.String() != "56:b3:03:00:ef:bd" ||
		p.PublicIP.String() != "192.0.2.2" || p.Dst.String() != "192.0.2.2" || !p.Programmed || p.Error != "" {
		t.Fatalf("peer status %+v", p)
	}
	m := f.r.metrics
	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"passes full", value(m.passes[passFull]), 1},
		{"route adds", value(m.writes[kindRoute][opAdd]), 2},
		{"fdb adds", value(m.writes[kindFDB][opAdd]), 2},
		{"neighbour adds", value(m.writes[kindNeigh][opAdd]), 2},
		{"peers", value(m.peers), 2},
		{"in_sync", value(m.inSync), 1},
		{"kernel routes", value(m.kernelEntries[kindRoute]), 2},
		{"drift", value(m.drift[kindRoute]), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	names := strings.Join(f.metricNames(), " ")
	for _, n := range []string{"passes_total", "writes_total", "errors_total", "pass_duration_seconds",
		"drift_repaired_total", "peers", "in_sync", "kernel_entries", "dumps_total", "dump_duration_seconds",
		"kernel_events_total", "kernel_event_changes_total"} {
		if !strings.Contains(names, "overlayd_sync_"+n) {
			t.Errorf("metric overlayd_sync_%s not registered (have %s)", n, names)
		}
	}
}

func TestNewReconcilerValidates(t *testing.T) {
	k := backendtest.New()
	net16 := netip.MustParsePrefix("10.244.0.0/16")
	tests := []struct {
		name string
		o    ReconcilerOptions
		want string
	}{
		{"no kernel", ReconcilerOptions{LinkName: "flannel.1", Network: net16}, "Kernel"},
		{"no link name", ReconcilerOptions{Kernel: k, Network: net16}, "LinkName"},
		{"no network", ReconcilerOptions{Kernel: k, LinkName: "flannel.1"}, "Network"},
		{"unmasked network", ReconcilerOptions{Kernel: k, LinkName: "flannel.1", Network: netip.MustParsePrefix("10.244.1.0/16")}, "Network 10.244.1.0/16"},
		{"direct routing without ext link", ReconcilerOptions{Kernel: k, LinkName: "flannel.1", Network: net16, DirectRouting: true}, "ExtLinkIndex"},
	}
	for _, tt := range tests {
		_, err := NewReconciler(tt.o)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want mention of %q", tt.name, err, tt.want)
		}
	}
}
