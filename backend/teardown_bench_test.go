package backend

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/overlayd/overlayd/backend/internal/nl"
)

// Teardown orderings for nexthop mode: how long removing every peer's
// route and nexthop object takes, by order and by batching. Run as root:
//
//	go test -run XXX -bench TeardownNexthop -benchtime 1x ./backend/
//
// Each iteration fills a fresh namespace with teardownPeers nexthops and
// routes through them (`ip -batch`, untimed), then times the deletes.
const teardownPeers = 50000

func teardownPeersList() []netip.Prefix {
	out := make([]netip.Prefix, teardownPeers)
	for i := range out {
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(1 + i/65536), byte(i / 256), byte(i)}), 32)
	}
	return out
}

// fillNexthops programs one nexthop and one `nhid` route per prefix.
func (n *nsNode) fillNexthops(prefixes []netip.Prefix) {
	var lines []string
	for _, p := range prefixes {
		id := nexthopID(netip.MustParsePrefix("10.0.0.0/8"), p)
		lines = append(lines, fmt.Sprintf("nexthop replace id %d via %s dev flannel.1 onlink", id, p.Addr()),
			fmt.Sprintf("route replace %s nhid %d", p, id))
	}
	n.batch("ip", lines)
}

// sendAll sends one request per prefix made by add, batch at a time, and
// fails on the first error.
func sendAll(b *testing.B, k *NetlinkKernel, prefixes []netip.Prefix, batch int, add func(*nl.Batch, netip.Prefix)) {
	var nb nl.Batch
	flush := func() {
		k.sendBatch(&nb)
		for i := range nb.Len() {
			if err := nb.Err(i); err != nil {
				b.Fatalf("request %d of a batch: %v", i, err)
			}
		}
		nb.Reset()
	}
	for _, p := range prefixes {
		add(&nb, p)
		if nb.Len() == batch {
			flush()
		}
	}
	flush()
}

func BenchmarkTeardownNexthop(b *testing.B) {
	network := netip.MustParsePrefix("10.0.0.0/8")
	delRoute := func(nb *nl.Batch, p netip.Prefix) { nb.DelRoute(p, 0) }
	delNexthop := func(nb *nl.Batch, p netip.Prefix) { nb.DelNexthop(nexthopID(network, p)) }
	for _, tc := range []struct {
		name   string
		batch  int
		routes bool // routes first, then nexthops; else nexthops only
	}{
		{"routes-then-nexthops/single", 1, true},
		{"routes-then-nexthops/batch64", maxBatch, true},
		{"nexthops-only/single", 1, false},
		{"nexthops-only/batch64", maxBatch, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			prefixes := teardownPeersList()
			for b.Loop() {
				b.StopTimer()
				n := newNSNode(b)
				n.fillNexthops(prefixes)
				k := n.netlinkKernel()
				b.StartTimer()
				if tc.routes {
					sendAll(b, k, prefixes, tc.batch, delRoute)
				}
				sendAll(b, k, prefixes, tc.batch, delNexthop)
				b.StopTimer()
				if out := n.sh("ip", "route", "show", "dev", "flannel.1"); out != "" {
					b.Fatalf("routes left: %.200s", out)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(teardownPeers), "peers")
		})
	}
}

// BenchmarkRemoveAll10kNexthopNamespace times the reconciler's pass that
// removes all of 10,000 peers in nexthop mode (40,000 deletes: routes,
// FDB entries, neighbours, then nexthops), with one request per write
// and with the batches a large incremental pass sends.
func BenchmarkRemoveAll10kNexthopNamespace(b *testing.B) {
	for _, batched := range []bool{false, true} {
		b.Run(map[bool]string{false: "single", true: "batched"}[batched], func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				n := newNSNode(b)
				lean := n.netlinkKernel()
				var k Kernel = &countingLeanKernel{countingKernel: countingKernel{Kernel: lean}, lean: lean}
				if batched {
					k = lean
				}
				r, err := NewReconciler(ReconcilerOptions{
					Kernel: k, LinkName: "flannel.1", LinkIndex: linkIndex(b, n.h, "flannel.1"),
					Network: netip.MustParsePrefix("10.0.0.0/8"), OwnSubnet: netip.MustParsePrefix("10.250.0.0/24"),
					RouteMode: RouteModeNexthop,
				})
				if err != nil {
					b.Fatal(err)
				}
				feed := newLeaseFeed(b, r)
				feed.replace(manyLeases(benchPeers))
				r.step(context.Background())
				feed.replace(nil)
				b.StartTimer()
				r.step(context.Background())
				b.StopTimer()
				if s := r.Status(); !s.InSync || s.Counts.Kernel != (EntryCounts{}) || s.Counts.KernelNexthops != 0 {
					b.Fatalf("after removing all: %+v", s.Counts)
				}
				b.StartTimer()
			}
		})
	}
}
