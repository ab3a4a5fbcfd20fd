package backend

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"

	"github.com/overlayd/overlayd/internal/logtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
)

// countingKernel counts the writes that reach the real kernel.
type countingKernel struct {
	Kernel
	writes atomic.Int64
}

func (k *countingKernel) NeighSet(n *netlink.Neigh) error {
	k.writes.Add(1)
	return k.Kernel.NeighSet(n)
}

func (k *countingKernel) NeighDel(n *netlink.Neigh) error {
	k.writes.Add(1)
	return k.Kernel.NeighDel(n)
}

func (k *countingKernel) RouteReplace(r *netlink.Route) error {
	k.writes.Add(1)
	return k.Kernel.RouteReplace(r)
}

func (k *countingKernel) RouteDel(r *netlink.Route) error {
	k.writes.Add(1)
	return k.Kernel.RouteDel(r)
}

// nsNode is one namespace with ul0 (192.0.2.1/24, a veth end) and flannel.1 as
// flanneld would have made them on node 1 of docs/compatibility.md ("What flanneld leaves on a node").
type nsNode struct {
	t    testing.TB
	name string
	h    *netlink.Handle
	ul0  int
}

func newNSNode(t testing.TB) *nsNode {
	t.Helper()
	name := netnsutil.NewT(t, "rec")
	// This kernel has no dummy driver: ul0 is one end of a veth pair.
	netnsutil.MustExec(t, name, "ip", "link", "add", "ul0", "type", "veth", "peer", "name", "ul0p")
	netnsutil.MustExec(t, name, "ip", "addr", "add", "192.0.2.1/24", "dev", "ul0")
	netnsutil.MustExec(t, name, "ip", "link", "set", "ul0p", "up")
	netnsutil.MustExec(t, name, "ip", "link", "set", "ul0", "up")
	h, err := netnsutil.Handle(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	n := &nsNode{t: t, name: name, h: h, ul0: linkIndex(t, h, "ul0")}
	if _, err := n.createVXLAN(); err != nil {
		t.Fatal(err)
	}
	return n
}

// createVXLAN makes flannel.1: id 1, local 192.0.2.1, dev ul0, port
// 8472, nolearning, up, 10.244.99.0/32.
func (n *nsNode) createVXLAN() (int, error) {
	mac, _ := net.ParseMAC("d6:87:b6:fa:f7:31")
	vx := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: "flannel.1", HardwareAddr: mac, MTU: 1450},
		VxlanId:      1,
		VtepDevIndex: n.ul0,
		SrcAddr:      net.ParseIP("192.0.2.1").To4(),
		Port:         8472,
		Learning:     false,
	}
	if err := n.h.LinkAdd(vx); err != nil {
		return 0, err
	}
	link, err := n.h.LinkByName("flannel.1")
	if err != nil {
		return 0, err
	}
	if err := n.h.LinkSetUp(link); err != nil {
		return 0, err
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("10.244.99.0").To4(), Mask: net.CIDRMask(32, 32)}}
	if err := n.h.AddrAdd(link, addr); err != nil {
		return 0, err
	}
	return link.Attrs().Index, nil
}

func (n *nsNode) sh(args ...string) string {
	n.t.Helper()
	return netnsutil.MustExec(n.t, n.name, args...)
}

// kernelState is what docs/compatibility.md shows: ip neigh, bridge fdb,
// ip route, trailing blanks trimmed.
func (n *nsNode) kernelState() string {
	var b strings.Builder
	for _, cmd := range [][]string{
		{"ip", "neigh", "show", "dev", "flannel.1"},
		{"bridge", "fdb", "show", "dev", "flannel.1"},
		{"ip", "route"},
	} {
		out, err := netnsutil.Exec(context.Background(), n.name, cmd...)
		if err != nil {
			return err.Error()
		}
		b.WriteString("$ " + strings.Join(cmd, " ") + "\n")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
		}
	}
	return b.String()
}

// startReconciler runs a reconciler on k until the returned stop is called
// or the test ends.
func (n *nsNode) startReconciler(k Kernel, resync time.Duration, reg prometheus.Registerer, log *logtest.Buffer, modify ...func(*ReconcilerOptions)) (*Reconciler, func()) {
	n.t.Helper()
	o := ReconcilerOptions{
		Kernel:         k,
		LinkName:       "flannel.1",
		LinkIndex:      linkIndex(n.t, n.h, "flannel.1"),
		ExtLinkIndex:   n.ul0,
		Network:        netip.MustParsePrefix("10.244.0.0/16"),
		OwnSubnet:      netip.MustParsePrefix("10.244.99.0/24"),
		ResyncInterval: resync,
		RetryMin:       10 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:     reg,
		OnDeviceMissing: func(context.Context) (int, error) {
			return n.createVXLAN()
		},
	}
	for _, m := range modify {
		m(&o)
	}
	r, err := NewReconciler(o)
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			n.t.Errorf("Run: %v", err)
		}
	}
	n.t.Cleanup(stop)
	return r, stop
}

func (n *nsNode) waitState(what, want string, log *logtest.Buffer) {
	n.t.Helper()
	n.waitFor(what, want, 10*time.Second, n.kernelState, log)
}

// waitFor polls state until it holds want's lines (in any order), and
// fails the test with the last state and log once within has passed.
func (n *nsNode) waitFor(what, want string, within time.Duration, state func() string, log *logtest.Buffer) {
	n.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := state()
		if sameLineSet(got, want) {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: kernel state\n%s\nwant\n%s\nlog:\n%s", what, got, want, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The docs/compatibility.md peer plus two more.
var nsPeers = []subnet.Lease{
	observedPeer,
	lease("10.244.38.0/24", "192.0.2.3", "0e:00:00:00:00:38"),
	lease("10.244.39.0/24", "198.51.100.9", "0e:00:00:00:00:39"),
}

// nsGoldenNeighFDB is flannel.1's neighbours and FDB entries for nsPeers,
// the same in every route mode.
const nsGoldenNeighFDB = `$ ip neigh show dev flannel.1
10.244.37.0 lladdr 56:b3:03:00:ef:bd PERMANENT
10.244.38.0 lladdr 0e:00:00:00:00:38 PERMANENT
10.244.39.0 lladdr 0e:00:00:00:00:39 PERMANENT
$ bridge fdb show dev flannel.1
56:b3:03:00:ef:bd dst 192.0.2.2 self permanent
0e:00:00:00:00:38 dst 192.0.2.3 self permanent
0e:00:00:00:00:39 dst 198.51.100.9 self permanent
`

const nsGolden = nsGoldenNeighFDB + `$ ip route
10.244.37.0/24 via 10.244.37.0 dev flannel.1 onlink
10.244.38.0/24 via 10.244.38.0 dev flannel.1 onlink
10.244.39.0/24 via 10.244.39.0 dev flannel.1 onlink
192.0.2.0/24 dev ul0 proto kernel scope link src 192.0.2.1
`

func TestReconcilerInNamespace(t *testing.T) {
	n := newNSNode(t)
	log := &logtest.Buffer{}
	counting := &countingKernel{Kernel: n.h}
	r, stop := n.startReconciler(counting, 200*time.Millisecond, prometheus.NewRegistry(), log)
	r.ReplacePeers(peersFor(r, append([]subnet.Lease{lease("10.244.99.0/24", "192.0.2.1", "d6:87:b6:fa:f7:31")}, nsPeers...)))
	waitSynced(t, r)
	n.waitState("first sync", nsGolden, log)
	if got := counting.writes.Load(); got != 9 {
		t.Errorf("first sync made %d writes, want 9", got)
	}

	// Drift behind the reconciler's back, repaired by the next resync.
	n.sh("ip", "neigh", "del", "10.244.37.0", "dev", "flannel.1")
	n.sh("bridge", "fdb", "replace", "0e:00:00:00:00:38", "dev", "flannel.1", "dst", "192.0.2.200", "self", "permanent")
	n.sh("ip", "route", "del", "10.244.39.0/24")
	n.sh("ip", "neigh", "add", "10.244.77.0", "lladdr", "0e:00:00:00:00:77", "dev", "flannel.1", "nud", "permanent")
	n.sh("bridge", "fdb", "add", "0e:00:00:00:00:77", "dev", "flannel.1", "dst", "192.0.2.77", "self", "permanent")
	n.sh("ip", "route", "add", "10.244.77.0/24", "via", "10.244.77.0", "dev", "flannel.1", "onlink")
	n.waitState("drift repaired", nsGolden, log)
	if d := value(r.metrics.drift[kindNeigh]) + value(r.metrics.drift[kindFDB]) + value(r.metrics.drift[kindRoute]); d < 6 {
		t.Errorf("drift_repaired_total sums to %v, want at least 6", d)
	}

	// The device vanishes: it is recreated and every entry comes back.
	n.sh("ip", "link", "del", "flannel.1")
	n.waitState("device recreated", nsGolden, log)
	stop()

	// A restart over a correct kernel writes nothing.
	restarted := &countingKernel{Kernel: n.h}
	r2, _ := n.startReconciler(restarted, time.Minute, prometheus.NewRegistry(), log)
	r2.ReplacePeers(peersFor(r2, nsPeers))
	waitSynced(t, r2)
	if got := restarted.writes.Load(); got != 0 {
		t.Fatalf("restart wrote %d entries\n%s", got, log)
	}
	if s := r2.Status(); !s.InSync || s.Counts.PeersProgrammed != 3 || s.Counts.Kernel != (EntryCounts{3, 3, 3}) {
		t.Fatalf("status after restart: %+v", s.Counts)
	}
}

func waitSynced(t *testing.T, r *Reconciler) {
	t.Helper()
	select {
	case <-r.Synced():
	case <-time.After(10 * time.Second):
		t.Fatalf("not synced: %+v", r.Status())
	}
}

// sameLineSet compares outputs line by line, ignoring order: the kernel
// lists neighbours and FDB entries in hash order.
func sameLineSet(a, b string) bool {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(la) != len(lb) {
		return false
	}
	count := map[string]int{}
	for _, l := range la {
		count[l]++
	}
	for _, l := range lb {
		count[l]--
	}
	for _, c := range count {
		if c != 0 {
			return false
		}
	}
	return true
}

// BenchmarkFullResyncIdle10kNamespace is the idle full resync against the
// real kernel: 10,000 peers, 30,000 entries, real dumps, zero writes.
func BenchmarkFullResyncIdle10kNamespace(b *testing.B) {
	n := newNSNode(b)
	counting := &countingKernel{Kernel: n.h}
	benchIdleResync(b, n, counting, &counting.writes)
}

// benchIdleResync syncs benchPeers peers through k, then times full
// resyncs that must find nothing to write (writes counts k's writes).
func benchIdleResync(b *testing.B, n *nsNode, k Kernel, writes *atomic.Int64) {
	r, err := NewReconciler(ReconcilerOptions{
		Kernel: k, LinkName: "flannel.1", LinkIndex: linkIndex(b, n.h, "flannel.1"),
		Network: netip.MustParsePrefix("10.0.0.0/8"), OwnSubnet: netip.MustParsePrefix("10.250.0.0/24"),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	r.ReplacePeers(peersFor(r, manyLeases(benchPeers)))
	r.step(ctx)
	if s := r.Status(); !s.InSync || s.Counts.Kernel != (EntryCounts{benchPeers, benchPeers, benchPeers}) {
		b.Fatalf("setup: %+v", s.Counts)
	}
	writes.Store(0)
	b.ReportAllocs()
	for b.Loop() {
		r.nextFull = time.Time{}
		r.step(ctx)
	}
	if n := writes.Load(); n != 0 {
		b.Fatalf("idle resync wrote %d entries", n)
	}
}
