package backend

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/backend/backendtest"
	"github.com/overlayd/overlayd/subnet"
)

// newEventsFixture is a fixture whose fake kernel reports its changes,
// with room for capacity queued notifications.
func newEventsFixture(t *testing.T, capacity int) *fixture {
	t.Helper()
	k := backendtest.New()
	k.AddLink(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "ul0"}})
	k.AddLink(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "flannel.1"}, VxlanId: 1})
	k.EnableEvents(capacity)
	return newFixtureOn(t, k)
}

// TestEventsRepairDriftWithoutDump: with notifications, drift is repaired
// on the next loop step, before any resync is due, by a full pass that
// reads no dump; our own writes' notifications change nothing.
func TestEventsRepairDriftWithoutDump(t *testing.T) {
	macA := mustMAC("0e:00:00:00:00:01")
	tests := []struct {
		name  string
		drift func(f *fixture) error
	}{
		{"deleted neighbour", func(f *fixture) error {
			return f.k.NeighDel(&netlink.Neigh{LinkIndex: f.dev, IP: net.ParseIP("10.244.1.0")})
		}},
		{"neighbour no longer permanent", func(f *fixture) error {
			return f.k.NeighSet(&netlink.Neigh{LinkIndex: f.dev, IP: net.ParseIP("10.244.1.0"), HardwareAddr: macA, State: netlink.NUD_STALE})
		}},
		{"deleted fdb entry", func(f *fixture) error {
			return f.k.NeighDel(&netlink.Neigh{LinkIndex: f.dev, Family: unix.AF_BRIDGE, HardwareAddr: macA, IP: net.ParseIP("192.0.2.11")})
		}},
		{"fdb entry with another dst", func(f *fixture) error {
			return f.k.NeighSet(&netlink.Neigh{LinkIndex: f.dev, Family: unix.AF_BRIDGE, HardwareAddr: macA, IP: net.ParseIP("192.0.2.200"), State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF})
		}},
		{"fdb entry with an extra dst", func(f *fixture) error {
			f.k.AppendFDB(f.dev, macA, net.ParseIP("192.0.2.201"))
			return nil
		}},
		{"deleted route", func(f *fixture) error {
			return f.k.RouteDel(&netlink.Route{LinkIndex: f.dev, Dst: ipNet("10.244.1.0/24")})
		}},
		{"route moved to another device", func(f *fixture) error {
			return f.k.RouteReplace(&netlink.Route{LinkIndex: f.ext, Dst: ipNet("10.244.1.0/24"), Gw: net.ParseIP("192.0.2.11")})
		}},
		{"stale entries of a departed peer", func(f *fixture) error {
			return firstErr(
				f.k.NeighSet(&netlink.Neigh{LinkIndex: f.dev, IP: net.ParseIP("10.244.77.0"), HardwareAddr: mustMAC("0e:00:00:00:00:77"), State: netlink.NUD_PERMANENT}),
				f.k.NeighSet(&netlink.Neigh{LinkIndex: f.dev, Family: unix.AF_BRIDGE, HardwareAddr: mustMAC("0e:00:00:00:00:77"), IP: net.ParseIP("192.0.2.77"), State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF}),
				f.k.RouteReplace(&netlink.Route{LinkIndex: f.dev, Dst: ipNet("10.244.77.0/24"), Gw: net.ParseIP("10.244.77.0"), Flags: int(netlink.FLAG_ONLINK)}),
			)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newEventsFixture(t, 1000)
			addForeign(t, f)
			f.replace([]subnet.Lease{peerA, peerB})
			f.step()
			f.step() // reads the first pass's echoes
			if got := value(f.r.metrics.eventChanges); got != 0 {
				t.Fatalf("our own writes changed the believed state %v times", got)
			}
			golden := f.state()
			dumps := f.k.Count(backendtest.OpNeighList)
			if err := tt.drift(f); err != nil {
				t.Fatal(err)
			}
			if f.state() == golden {
				t.Fatal("drift did not change the kernel")
			}
			f.step() // no time passes: no resync is due
			if got := f.state(); got != golden {
				t.Fatalf("after one step:\n%s\nwant:\n%s\nlog:\n%s", got, golden, f.log)
			}
			if got := f.k.Count(backendtest.OpNeighList); got != dumps {
				t.Errorf("%d dumps for the repair, want none", got-dumps)
			}
			f.k.ResetCounts()
			f.step()
			f.full()
			if n, d := f.k.Writes(), f.k.Count(backendtest.OpNeighList); n != 0 || d != 0 {
				t.Errorf("after the repair: %d writes, %d dumps in a step and a resync, want 0 and 0", n, d)
			}
		})
	}
}

// TestEventsLostOrDeviceChangedDump: lost notifications, and our device
// going away, make the next pass read the kernel again.
func TestEventsLostOrDeviceChangedDump(t *testing.T) {
	tests := []struct {
		name   string
		change func(f *fixture)
		reason dumpReason
	}{
		{"notifications lost", func(f *fixture) {
			for range 3 {
				f.k.AppendFDB(f.ext, mustMAC("0e:00:00:00:00:55"), net.ParseIP("192.0.2.55"))
			}
		}, dumpLost},
		{"device deleted and made again", func(f *fixture) {
			f.k.DeleteLink("flannel.1")
			f.dev = f.k.AddLink(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "flannel.1"}, VxlanId: 1})
		}, dumpDevice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newEventsFixture(t, 2)
			f.replace([]subnet.Lease{peerA})
			f.step()
			f.step() // three echoes overflowed two slots: one more dump
			golden := f.state()
			f.step()
			before := value(f.r.metrics.dumps[tt.reason])
			tt.change(f)
			f.step()
			f.step()
			if got := value(f.r.metrics.dumps[tt.reason]); got != before+1 {
				t.Errorf("dumps{reason=%s} went from %v to %v, want one more\n%s", tt.reason, before, got, f.log)
			}
			if got := f.state(); got != golden {
				t.Fatalf("after the dump:\n%s\nwant:\n%s\nlog:\n%s", got, golden, f.log)
			}
		})
	}
}

// BenchmarkPeriodicPassNoDump100k is the periodic pass the daemon runs
// when notifications keep its believed state current: the in-memory diff
// of 100,000 peers (300,000 entries) with nothing to repair, no dump.
func BenchmarkPeriodicPassNoDump100k(b *testing.B) {
	k := backendtest.New()
	k.AddLink(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "ul0"}})
	k.AddLink(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "flannel.1"}, VxlanId: 1})
	k.EnableEvents(1 << 30)
	f := newFixtureOn(b, k, bigNetwork, func(o *ReconcilerOptions) {
		o.Logger = nilLogger()
		// The fake clock jumps a resync per pass: no safety dump in b.N of them.
		o.DumpInterval = 1000 * time.Hour
	})
	leases := make([]subnet.Lease, 0, 100000)
	for i := range 100000 {
		// /25 subnets: 100,000 of them fit in 10.0.0.0/8.
		sub := fmt.Sprintf("10.%d.%d.%d/25", 1+i/512, i/2%256, 128*(i%2))
		leases = append(leases, lease(sub, fmt.Sprintf("198.51.100.%d", 1+i%250),
			fmt.Sprintf("0e:00:00:%02x:%02x:%02x", i>>16, i>>8&0xff, i&0xff)))
	}
	f.replace(leases)
	f.step()
	f.step() // reads the echoes
	ctx := context.Background()
	f.k.ResetCounts()
	b.ReportAllocs()
	cpu := cpuTime(b)
	for b.Loop() {
		f.clock.Advance(fullDue(f.r.opts))
		f.r.step(ctx)
	}
	// CPU time is what a loaded machine does not inflate: wall time per
	// pass grows with the load average.
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	if n, d := f.k.Writes(), f.k.Count(backendtest.OpNeighList); n != 0 || d != 0 {
		b.Fatalf("idle passes wrote %d entries and dumped %d times", n, d)
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFirstSnapshot100k is what the loop does with the first
// snapshot of 100,000 peers before its first write: the desired state
// built from nothing (applyPending).
func BenchmarkFirstSnapshot100k(b *testing.B) {
	leases := make([]subnet.Lease, 0, 100000)
	for i := range 100000 {
		sub := fmt.Sprintf("10.%d.%d.%d/25", 1+i/512, i/2%256, 128*(i%2))
		leases = append(leases, lease(sub, fmt.Sprintf("198.51.100.%d", 1+i%250),
			fmt.Sprintf("0e:00:00:%02x:%02x:%02x", i>>16, i>>8&0xff, i&0xff)))
	}
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		f := newFixture(b, bigNetwork, func(o *ReconcilerOptions) { o.Logger = nilLogger() })
		peers := peersFor(f.r, leases)
		f.r.ReplacePeers(peers)
		b.StartTimer()
		before := cpuTime(b)
		f.r.applyPending()
		cpu += cpuTime(b) - before
	}
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}
