package backend

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/logtest"
	"github.com/overlayd/overlayd/subnet"
)

// TestReconcilerBatchedWritesInNamespace syncs through NetlinkKernel
// (lean dumps, batched adds) on a real kernel, in each route mode: the
// docs/compatibility.md state for the golden peers (or its nexthop form),
// then 300 more peers over several batches. A restart through single
// writes (the plain library in onlink mode) then finds nothing to write,
// so the batched entries are exactly what single writes would have made.
func TestReconcilerBatchedWritesInNamespace(t *testing.T) {
	for _, tc := range routeModeCases {
		t.Run(string(tc.mode), func(t *testing.T) {
			n := newNSNode(t)
			log := &logtest.Buffer{}
			k := n.netlinkKernel()
			r, stop := n.startReconciler(k, time.Minute, prometheus.NewRegistry(), log, withRouteMode(tc.mode))
			r.ReplacePeers(peersFor(r, append([]subnet.Lease{lease("10.244.99.0/24", "192.0.2.1", "d6:87:b6:fa:f7:31")}, nsPeers...)))
			waitSynced(t, r)
			n.waitModeState("first sync", tc, log)
			stop()

			// 300 /28 peers: a full pass of 900 adds (1200 with nexthops),
			// 5 batches per table.
			many := append([]subnet.Lease{}, nsPeers...)
			for i := 1; i <= 300; i++ {
				many = append(many, lease(fmt.Sprintf("10.244.%d.%d/28", 100+i/16, 16*(i%16)),
					fmt.Sprintf("198.51.100.%d", 1+i%250), fmt.Sprintf("0e:00:00:00:%02x:%02x", 0x10+i>>8, i&0xff)))
			}
			r2, stop2 := n.startReconciler(k, time.Minute, prometheus.NewRegistry(), log, withRouteMode(tc.mode))
			r2.ReplacePeers(peersFor(r2, many))
			waitSynced(t, r2)
			if s := r2.Status(); !s.InSync || s.Counts.Kernel != (EntryCounts{303, 303, 303}) {
				t.Fatalf("after batched sync: %+v\n%s", s.Counts, log)
			}
			stop2()
			shape := "onlink"
			if tc.mode == RouteModeNexthop {
				shape = "nhid"
				if got := strings.Count(n.nexthopState(), "onlink"); got != 303 {
					t.Fatalf("%d nexthops on flannel.1, want 303", got)
				}
			}
			if got := strings.Count(n.sh("ip", "route", "show", "dev", "flannel.1"), shape); got != 303 {
				t.Fatalf("%d %s routes on flannel.1, want 303", got, shape)
			}

			// 300 peers removed at once: one incremental pass of 900 deletes
			// (1200 with nexthops), sent in batches, routes before nexthops.
			rm, stopRm := n.startReconciler(k, time.Minute, prometheus.NewRegistry(), log, withRouteMode(tc.mode))
			feed := newLeaseFeed(t, rm)
			feed.replace(many)
			waitSynced(t, rm)
			var removed []subnet.Event
			for _, l := range many[len(nsPeers):] {
				removed = append(removed, subnet.Event{Type: subnet.EventRemoved, Lease: l})
			}
			feed.update(removed)
			n.waitModeState("300 peers removed in batches", tc, log)
			stopRm()
			if s := rm.Status(); !s.InSync || s.Counts.Kernel != (EntryCounts{3, 3, 3}) || s.Counts.KernelNexthops != strings.Count(tc.nexthops, "id ") {
				t.Fatalf("after batched removal: %+v\n%s", s.Counts, log)
			}
			rm2, stopRm2 := n.startReconciler(k, time.Minute, prometheus.NewRegistry(), log, withRouteMode(tc.mode))
			rm2.ReplacePeers(peersFor(rm2, many))
			waitSynced(t, rm2)
			stopRm2()

			var single Kernel = &countingKernel{Kernel: n.h}
			writes := &single.(*countingKernel).writes
			if tc.mode == RouteModeNexthop {
				lean := &countingLeanKernel{countingKernel: countingKernel{Kernel: n.h}, lean: k}
				single, writes = lean, &lean.writes
			}
			r3, _ := n.startReconciler(single, time.Minute, prometheus.NewRegistry(), log, withRouteMode(tc.mode))
			r3.ReplacePeers(peersFor(r3, many))
			waitSynced(t, r3)
			if got := writes.Load(); got != 0 {
				t.Fatalf("restart through single writes wrote %d entries after the batched sync\n%s", got, log)
			}
		})
	}
}

// benchColdPass times the first full pass of 10,000 peers (30,000 adds)
// into an empty namespace; kernel makes the Kernel for a fresh node.
func benchColdPass(b *testing.B, kernel func(n *nsNode) Kernel, modify ...func(*ReconcilerOptions)) {
	var cpu time.Duration
	defer func() { b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op") }()
	for b.Loop() {
		b.StopTimer()
		n := newNSNode(b)
		o := ReconcilerOptions{
			Kernel: kernel(n), LinkName: "flannel.1", LinkIndex: linkIndex(b, n.h, "flannel.1"),
			Network: netip.MustParsePrefix("10.0.0.0/8"), OwnSubnet: netip.MustParsePrefix("10.250.0.0/24"),
		}
		for _, m := range modify {
			m(&o)
		}
		r, err := NewReconciler(o)
		if err != nil {
			b.Fatal(err)
		}
		r.ReplacePeers(peersFor(r, manyLeases(benchPeers)))
		b.StartTimer()
		before := cpuTime(b)
		r.step(context.Background())
		cpu += cpuTime(b) - before
		b.StopTimer()
		if s := r.Status(); !s.InSync || s.Counts.Kernel != (EntryCounts{benchPeers, benchPeers, benchPeers}) {
			b.Fatalf("cold pass: %+v", s.Counts)
		}
		b.StartTimer()
	}
}

// BenchmarkColdPass10kNamespace: one write per request through the
// library (and its dumps).
func BenchmarkColdPass10kNamespace(b *testing.B) {
	benchColdPass(b, func(n *nsNode) Kernel { return n.h })
}

// BenchmarkColdPass10kNamespaceBatched: NetlinkKernel, adds in batches.
func BenchmarkColdPass10kNamespaceBatched(b *testing.B) {
	benchColdPass(b, func(n *nsNode) Kernel { return n.netlinkKernel() })
}

// BenchmarkColdPass10kNexthopNamespaceBatched is the batched cold pass in
// nexthop route mode: 40,000 adds (nexthops before routes).
func BenchmarkColdPass10kNexthopNamespaceBatched(b *testing.B) {
	benchColdPass(b, func(n *nsNode) Kernel { return n.netlinkKernel() }, withRouteMode(RouteModeNexthop))
}

// BenchmarkColdPass10kNexthopNamespaceNoEvents is the same pass by a
// NetlinkKernel without its notification socket: what reading the
// pass's own echoes costs.
func BenchmarkColdPass10kNexthopNamespaceNoEvents(b *testing.B) {
	benchColdPass(b, func(n *nsNode) Kernel {
		k := n.netlinkKernel()
		k.mon.Close()
		k.mon = nil
		return k
	}, withRouteMode(RouteModeNexthop))
}
