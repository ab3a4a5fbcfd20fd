package backend

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/backend/backendtest"
	"github.com/overlayd/overlayd/subnet"
)

var (
	peerA = lease("10.244.1.0/24", "192.0.2.11", "0e:00:00:00:00:01")
	peerB = lease("10.244.2.0/24", "192.0.2.12", "0e:00:00:00:00:02")
	// stalePeer is an entry of a previous run: ours to delete, but only
	// once the complete peer set is known.
	stalePeer = lease("10.244.77.0/24", "192.0.2.77", "0e:00:00:00:00:77")
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func ipNet(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

// addForeign puts entries in the kernel that are not ours: a full resync
// must leave every one of them alone.
func addForeign(t *testing.T, f *fixture) {
	t.Helper()
	k := f.k
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(k.RouteReplace(&netlink.Route{LinkIndex: f.dev, Dst: ipNet("10.244.0.0/16"), Scope: netlink.SCOPE_LINK}))
	must(k.RouteReplace(&netlink.Route{LinkIndex: f.dev, Dst: ipNet("192.168.5.0/24"), Scope: netlink.SCOPE_LINK}))
	must(k.RouteReplace(&netlink.Route{LinkIndex: f.dev, Dst: ipNet("10.244.99.0/24"), Scope: netlink.SCOPE_LINK}))
	must(k.RouteReplace(&netlink.Route{LinkIndex: f.dev, Dst: ipNet("10.244.98.0/24"), Scope: netlink.SCOPE_LINK, Protocol: unix.RTPROT_KERNEL}))
	must(k.RouteReplace(&netlink.Route{LinkIndex: f.ext, Dst: ipNet("10.244.88.0/24"), Gw: net.ParseIP("192.0.2.254")}))
	must(k.RouteReplace(&netlink.Route{LinkIndex: f.ext, Dst: ipNet("192.0.2.0/24"), Scope: netlink.SCOPE_LINK, Protocol: unix.RTPROT_KERNEL}))
	must(k.NeighSet(&netlink.Neigh{LinkIndex: f.ext, IP: net.ParseIP("192.0.2.2"), HardwareAddr: mustMAC("02:00:00:00:00:02"), State: netlink.NUD_REACHABLE}))
	must(k.NeighSet(&netlink.Neigh{LinkIndex: f.dev, Family: unix.AF_BRIDGE, HardwareAddr: mustMAC("00:00:00:00:00:00"), IP: net.ParseIP("192.0.2.250"), State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF}))
	must(k.NeighSet(&netlink.Neigh{LinkIndex: f.dev, Family: unix.AF_BRIDGE, HardwareAddr: mustMAC("01:00:5e:00:00:01"), IP: net.ParseIP("192.0.2.251"), State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF}))
	// A learned entry (a device with learning on) is the kernel's.
	must(k.NeighSet(&netlink.Neigh{LinkIndex: f.dev, Family: unix.AF_BRIDGE, HardwareAddr: mustMAC("0e:00:00:00:00:55"), IP: net.ParseIP("192.0.2.55"), State: netlink.NUD_REACHABLE, Flags: netlink.NTF_SELF}))
}

func TestFullResyncRepairsDrift(t *testing.T) {
	dev := func(f *fixture) int { return f.dev }
	macA := mustMAC("0e:00:00:00:00:01")
	tests := []struct {
		name  string
		drift func(f *fixture) error
		want  [numKinds]float64 // drift_repaired_total by kind
	}{
		{"deleted neighbour", func(f *fixture) error {
			return f.k.NeighDel(&netlink.Neigh{LinkIndex: dev(f), IP: net.ParseIP("10.244.1.0")})
		}, [numKinds]float64{1, 0, 0}},
		{"neighbour with another lladdr", func(f *fixture) error {
			return f.k.NeighSet(&netlink.Neigh{LinkIndex: dev(f), IP: net.ParseIP("10.244.1.0"), HardwareAddr: mustMAC("0e:00:00:00:00:99"), State: netlink.NUD_PERMANENT})
		}, [numKinds]float64{1, 0, 0}},
		{"neighbour no longer permanent", func(f *fixture) error {
			return f.k.NeighSet(&netlink.Neigh{LinkIndex: dev(f), IP: net.ParseIP("10.244.1.0"), HardwareAddr: macA, State: netlink.NUD_STALE})
		}, [numKinds]float64{1, 0, 0}},
		{"deleted fdb entry", func(f *fixture) error {
			return f.k.NeighDel(&netlink.Neigh{LinkIndex: dev(f), Family: unix.AF_BRIDGE, HardwareAddr: macA, IP: net.ParseIP("192.0.2.11")})
		}, [numKinds]float64{0, 1, 0}},
		{"fdb entry with another dst", func(f *fixture) error {
			return f.k.NeighSet(&netlink.Neigh{LinkIndex: dev(f), Family: unix.AF_BRIDGE, HardwareAddr: macA, IP: net.ParseIP("192.0.2.200"), State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF})
		}, [numKinds]float64{0, 1, 0}},
		{"fdb entry with an extra dst", func(f *fixture) error {
			f.k.AppendFDB(dev(f), macA, net.ParseIP("192.0.2.201"))
			return nil
		}, [numKinds]float64{0, 2, 0}}, // delete the extra, then replace
		{"deleted route", func(f *fixture) error {
			return f.k.RouteDel(&netlink.Route{LinkIndex: dev(f), Dst: ipNet("10.244.1.0/24")})
		}, [numKinds]float64{0, 0, 1}},
		{"route with another gateway", func(f *fixture) error {
			return f.k.RouteReplace(&netlink.Route{LinkIndex: dev(f), Dst: ipNet("10.244.1.0/24"), Gw: net.ParseIP("10.244.1.5"), Flags: int(netlink.FLAG_ONLINK)})
		}, [numKinds]float64{0, 0, 1}},
		{"route without onlink", func(f *fixture) error {
			return f.k.RouteReplace(&netlink.Route{LinkIndex: dev(f), Dst: ipNet("10.244.1.0/24"), Gw: net.ParseIP("10.244.1.0")})
		}, [numKinds]float64{0, 0, 1}},
		{"route moved to another device", func(f *fixture) error {
			return f.k.RouteReplace(&netlink.Route{LinkIndex: f.ext, Dst: ipNet("10.244.1.0/24"), Gw: net.ParseIP("192.0.2.11")})
		}, [numKinds]float64{0, 0, 1}},
		{"stale entries of a departed peer", func(f *fixture) error {
			return firstErr(
				f.k.NeighSet(&netlink.Neigh{LinkIndex: dev(f), IP: net.ParseIP("10.244.77.0"), HardwareAddr: mustMAC("0e:00:00:00:00:77"), State: netlink.NUD_PERMANENT}),
				f.k.NeighSet(&netlink.Neigh{LinkIndex: dev(f), Family: unix.AF_BRIDGE, HardwareAddr: mustMAC("0e:00:00:00:00:77"), IP: net.ParseIP("192.0.2.77"), State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF}),
				f.k.RouteReplace(&netlink.Route{LinkIndex: dev(f), Dst: ipNet("10.244.77.0/24"), Gw: net.ParseIP("10.244.77.0"), Flags: int(netlink.FLAG_ONLINK)}),
			)
		}, [numKinds]float64{1, 1, 1}},
		{"stale MAC with two destinations", func(f *fixture) error {
			f.k.AppendFDB(dev(f), mustMAC("0e:00:00:00:00:66"), net.ParseIP("192.0.2.66"))
			f.k.AppendFDB(dev(f), mustMAC("0e:00:00:00:00:66"), net.ParseIP("192.0.2.67"))
			return nil
		}, [numKinds]float64{0, 2, 0}},
		{"kernel-made neighbour of no peer", func(f *fixture) error {
			return f.k.NeighSet(&netlink.Neigh{LinkIndex: dev(f), IP: net.ParseIP("10.244.55.0"), State: netlink.NUD_FAILED})
		}, [numKinds]float64{1, 0, 0}},
		{"our route with a metric", func(f *fixture) error {
			return f.k.RouteReplace(&netlink.Route{LinkIndex: dev(f), Dst: ipNet("10.244.1.0/24"), Gw: net.ParseIP("10.244.1.0"), Flags: int(netlink.FLAG_ONLINK), Priority: 100})
		}, [numKinds]float64{0, 0, 1}},
		{"scope-link route inside the network on our device", func(f *fixture) error {
			return f.k.RouteReplace(&netlink.Route{LinkIndex: dev(f), Dst: ipNet("10.244.44.0/24"), Scope: netlink.SCOPE_LINK})
		}, [numKinds]float64{0, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			addForeign(t, f)
			f.replace([]subnet.Lease{peerA, peerB})
			f.step()
			golden := f.state()
			if err := tt.drift(f); err != nil {
				t.Fatal(err)
			}
			if f.state() == golden {
				t.Fatal("drift did not change the kernel")
			}
			f.full()
			if got := f.state(); got != golden {
				t.Fatalf("after resync:\n%s\nwant:\n%s\nlog:\n%s", got, golden, f.log)
			}
			for k := range numKinds {
				if got := value(f.r.metrics.drift[k]); got != tt.want[k] {
					t.Errorf("drift_repaired_total{entry=%s} = %v, want %v", k, got, tt.want[k])
				}
			}
			f.k.ResetCounts()
			f.full()
			if n := f.k.Writes(); n != 0 {
				t.Errorf("second resync wrote %d entries", n)
			}
			if !f.r.Status().InSync {
				t.Errorf("not in sync: %+v", f.r.Status())
			}
		})
	}
}

func firstErr(errs ...error) error { return firstNonNil(errs...) }

func TestReplacePeersRemovesDeparted(t *testing.T) {
	f := newFixture(t)
	f.replace([]subnet.Lease{peerA, peerB, observedPeer})
	f.step()
	f.k.ResetCounts()
	f.replace([]subnet.Lease{peerB})
	f.step()
	want := []string{"10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink"}
	if got := f.k.RouteLines(); !slices.Equal(got, want) {
		t.Fatalf("routes %q, want %q", got, want)
	}
	if got := len(f.neighLines()) + len(f.fdbLines()); got != 2 {
		t.Fatalf("%d neighbour+fdb entries, want 2:\n%s", got, f.state())
	}
	if n := f.k.Writes(); n != 6 {
		t.Fatalf("%d writes, want 6 deletes", n)
	}
}

func TestToleratedErrnos(t *testing.T) {
	f := newFixture(t)
	f.replace([]subnet.Lease{peerA, peerB})
	f.step()
	f.k.Fail(backendtest.OpRouteDel, "", 1, unix.ESRCH)
	f.k.Fail(backendtest.OpFDBDel, "", 1, unix.ENOENT)
	f.k.Fail(backendtest.OpNeighDel, "", 1, unix.ENOENT)
	f.k.Fail(backendtest.OpNeighSet, "", 1, unix.EEXIST)
	f.k.Fail(backendtest.OpFDBSet, "", 1, unix.EEXIST)
	f.k.Fail(backendtest.OpRouteReplace, "", 1, unix.EEXIST)
	f.update([]subnet.Event{removed(peerA), added(observedPeer)})
	f.step()
	s := f.r.Status()
	if !s.InSync || s.Counts.Failing != 0 || s.LastError != "" {
		t.Fatalf("tolerated errnos made the reconciler fail: %+v\n%s", s, f.log)
	}
	for k := range numKinds {
		for op := range numOps {
			if n := value(f.r.metrics.errors[k][op]); n != 0 {
				t.Errorf("errors_total{%s,%s} = %v", k, op, n)
			}
		}
	}
}

func TestOneFailingPeerDoesNotStallOthers(t *testing.T) {
	f := newFixture(t)
	f.replace(manyLeasesIn("10.244", 5))
	f.k.Fail(backendtest.OpRouteReplace, "", 2, errNoBufs)
	f.step()
	s := f.r.Status()
	if s.InSync || s.Counts.Failing != 2 || s.Counts.PeersProgrammed != 3 || !strings.Contains(s.LastError, "no buffer space") {
		t.Fatalf("after 2 failed route writes: %+v", s.Counts)
	}
	var failed int
	for _, p := range s.Peers {
		if !p.Programmed {
			failed++
			if !strings.Contains(p.Error, "replace route") {
				t.Errorf("peer %s error %q", p.Subnet, p.Error)
			}
		}
	}
	if failed != 2 {
		t.Errorf("%d peers not programmed, want 2", failed)
	}
	if n := len(f.log.Lines("WARN", "sync writes failed")); n != 1 {
		t.Errorf("%d failure lines for one pass, want 1 (first of N)", n)
	}
	if n := len(f.log.Lines("WARN", "out of sync")); n != 1 {
		t.Errorf("%d out-of-sync lines, want 1", n)
	}
	if wait := f.r.nextFull.Sub(s.LastPass); wait > DefaultRetryMin+s.LastPassDuration+50e6 {
		t.Errorf("retry scheduled in %v, want about %v", wait, DefaultRetryMin)
	}

	// A new peer is programmed at once, while the failed ones wait.
	f.update([]subnet.Event{added(observedPeer)})
	f.step()
	if s := f.r.Status(); s.Counts.PeersProgrammed != 4 {
		t.Fatalf("new peer not programmed during backoff: %+v", s.Counts)
	}
	// The retry (a full pass) repairs the rest.
	f.full()
	s = f.r.Status()
	if !s.InSync || s.Counts.PeersProgrammed != 6 || len(f.k.RouteLines()) != 6 {
		t.Fatalf("after retry: %+v\n%s", s.Counts, f.state())
	}
	if n := len(f.log.Lines("INFO", "in sync")); n != 1 {
		t.Errorf("%d in-sync lines, want 1 (on recovery)", n)
	}
}

func TestFailuresRetriedByRun(t *testing.T) {
	f := newFixture(t, func(o *ReconcilerOptions) {
		o.RetryMin, o.RetryMax = 2e6, 20e6 // 2ms..20ms
	})
	f.k.Fail(backendtest.OpFDBSet, "0e:00:00:00:00:03", 4, errNoBufs)
	f.k.Fail(backendtest.OpRouteReplace, "10.244.5.0/24", -1, errNoBufs) // never heals
	f.run()
	f.replace(manyLeasesIn("10.244", 6))
	f.waitFor("all but the broken peer programmed", func() bool {
		return f.r.Status().Counts.PeersProgrammed == 5
	})
	f.update([]subnet.Event{added(observedPeer)})
	f.waitFor("a new peer programmed despite the broken one", func() bool {
		return f.r.Status().Counts.PeersProgrammed == 6
	})
	if f.r.Status().InSync {
		t.Fatal("in sync with a peer failing")
	}
	f.k.ClearFaults()
	f.waitFor("in sync once the fault is gone", func() bool {
		s := f.r.Status()
		return s.InSync && s.Counts.PeersProgrammed == 7
	})
	select {
	case <-f.r.Synced():
	default:
		t.Fatal("Synced not closed")
	}
}

// manyLeasesIn returns n peers <prefix>.<i>.0/24 (i from 1).
func manyLeasesIn(prefix string, n int) []subnet.Lease {
	out := make([]subnet.Lease, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, lease(fmt.Sprintf("%s.%d.0/24", prefix, i), fmt.Sprintf("192.0.2.%d", 10+i),
			fmt.Sprintf("0e:00:00:00:00:%02x", i)))
	}
	return out
}
