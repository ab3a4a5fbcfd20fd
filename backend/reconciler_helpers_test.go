package backend

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/backend/backendtest"
	"github.com/overlayd/overlayd/internal/logtest"
	"github.com/overlayd/overlayd/peerset"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

// fixture is a reconciler over a fake kernel with lo, ul0 and flannel.1,
// driven step by step (no Run goroutine) unless a test starts Run.
type fixture struct {
	t     testing.TB
	clock *subnettest.Clock
	k     *backendtest.FakeKernel
	r     *Reconciler
	// set decodes the leases a test feeds, as the daemon's peer set does.
	set *peerset.Set
	// running: run started the Run loops; inputs are not stepped by hand.
	running bool
	reg     *prometheus.Registry
	log     *logtest.Buffer
	dev     int
	ext     int
}

func newFixture(t testing.TB, modify ...func(*ReconcilerOptions)) *fixture {
	t.Helper()
	return newFixtureOn(t, nil, modify...)
}

// restartedOverStale programs stalePeer, then returns a fixture of a
// reconciler restarted on the same kernel (the stale entry is a previous
// run's).
func restartedOverStale(t testing.TB) *fixture {
	t.Helper()
	f := newFixture(t)
	f.replace([]subnet.Lease{stalePeer})
	f.step()
	return newFixtureOn(t, f.k)
}

// newFixtureOn builds a fixture over an existing fake kernel (a restart),
// or a new one with ul0 and flannel.1 when k is nil.
func newFixtureOn(t testing.TB, k *backendtest.FakeKernel, modify ...func(*ReconcilerOptions)) *fixture {
	t.Helper()
	if k == nil {
		k = backendtest.New()
		k.AddLink(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "ul0"}})
		k.AddLink(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "flannel.1"}, VxlanId: 1})
	}
	f := &fixture{t: t, k: k, reg: prometheus.NewRegistry(), log: &logtest.Buffer{},
		clock: subnettest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	f.ext = linkIndex(t, k, "ul0")
	f.dev = linkIndex(t, k, "flannel.1")
	o := ReconcilerOptions{
		Kernel:       k,
		LinkName:     "flannel.1",
		LinkIndex:    f.dev,
		ExtLinkIndex: f.ext,
		Network:      netip.MustParsePrefix("10.244.0.0/16"),
		OwnSubnet:    netip.MustParsePrefix("10.244.99.0/24"),
		Logger:       slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:   f.reg,
		Clock:        f.clock,
	}
	for _, m := range modify {
		m(&o)
	}
	r, err := NewReconciler(o)
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	f.set, err = peerset.New(peerset.Options{Network: o.Network, OwnSubnet: o.OwnSubnet, Peers: r, Clock: f.clock, Logger: o.Logger})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// replace feeds a lease snapshot through the peer set into the
// reconciler's queue (at once, unless run started the peer set's loop).
func (f *fixture) replace(leases []subnet.Lease) {
	f.set.ReplacePeers(leases)
	if !f.running {
		f.set.Step()
	}
}

// update feeds lease events through the peer set into the reconciler's
// queue (at once, unless run started the peer set's loop).
func (f *fixture) update(events []subnet.Event) {
	f.set.UpdatePeers(events)
	if !f.running {
		f.set.Step()
	}
}

// peerCapture keeps the last snapshot a peer set delivered.
type peerCapture struct{ peers []peerset.Peer }

func (c *peerCapture) ReplacePeers(p []peerset.Peer) { c.peers = p }
func (c *peerCapture) UpdatePeers([]peerset.Change)  {}

// peersFor decodes leases as the daemon's peer set does for r.
func peersFor(r *Reconciler, leases []subnet.Lease) []peerset.Peer {
	c := &peerCapture{}
	set, err := peerset.New(peerset.Options{Network: r.opts.Network, OwnSubnet: r.opts.OwnSubnet, Peers: c})
	if err != nil {
		panic(err)
	}
	set.ReplacePeers(leases)
	set.Step()
	return c.peers
}

func linkIndex(t testing.TB, k Kernel, name string) int {
	t.Helper()
	l, err := k.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return l.Attrs().Index
}

// step runs one loop iteration: apply inputs, then the pass that is due;
// then it checks the bookkeeping invariants.
func (f *fixture) step() {
	f.t.Helper()
	f.r.step(context.Background())
	programmed := 0
	for _, p := range f.r.want.peers {
		if p.programmed() {
			programmed++
		}
		if p.pending&^p.kinds() != 0 {
			f.t.Errorf("peer %s pending %b outside its kinds %b", p.subnet, p.pending, p.kinds())
		}
	}
	if programmed != f.r.programmed {
		f.t.Errorf("programmed count %d, but %d peers are programmed", f.r.programmed, programmed)
	}
	if s := f.r.Status(); s.Counts.PeersProgrammed != programmed || len(s.Peers) != len(f.r.want.peers) {
		f.t.Errorf("status shows %d programmed of %d, want %d of %d", s.Counts.PeersProgrammed, len(s.Peers), programmed, len(f.r.want.peers))
	}
}

// full lets time pass until a full resync is due (past any retry backoff
// and the jittered interval), and steps.
func (f *fixture) full() {
	f.clock.Advance(fullDue(f.r.opts))
	f.step()
}

// fullDue is a step of the clock after which a full pass is due.
func fullDue(o ReconcilerOptions) time.Duration { return o.RetryMax + 2*o.ResyncInterval }

// run starts the Run loop until the test ends.
func (f *fixture) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	f.running = true
	go func() { done <- f.r.Run(ctx) }()
	go func() { done <- f.set.Run(ctx) }()
	f.t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				f.t.Errorf("Run: %v", err)
			}
		}
	})
}

func (f *fixture) neighLines() []string { return f.k.NeighLines(f.dev) }
func (f *fixture) fdbLines() []string   { return f.k.FDBLines(f.dev) }

// state renders the kernel as `ip neigh`, `bridge fdb` and `ip route`
// would, one block each.
func (f *fixture) state() string {
	return strings.Join(f.neighLines(), "\n") + "\n--\n" + strings.Join(f.fdbLines(), "\n") +
		"\n--\n" + strings.Join(f.k.RouteLines(), "\n")
}

// value reads one of the reconciler's counters or gauges.
func value(m prometheus.Metric) float64 {
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		panic(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

// metricNames lists the metric families the registry exposes.
func (f *fixture) metricNames() []string {
	f.t.Helper()
	families, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, mf := range families {
		names = append(names, mf.GetName())
	}
	return names
}

func (f *fixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	// The Run loop's clock moves a millisecond per poll: timers (retries)
	// fire as they would in real time, while waiting for the goroutine.
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s; kernel:\n%s\nlog:\n%s", what, f.state(), f.log)
		}
		time.Sleep(time.Millisecond)
		f.clock.Advance(time.Millisecond)
	}
}

// lease builds a vxlan lease in the v0.28 JSON form.
func lease(sub, publicIP, mac string) subnet.Lease {
	return subnet.Lease{
		Subnet: netip.MustParsePrefix(sub),
		Attrs: subnet.LeaseAttrs{
			PublicIP:    netip.MustParseAddr(publicIP),
			BackendType: "vxlan",
			BackendData: []byte(fmt.Sprintf(`{"VNI":1,"VtepMAC":%q}`, mac)),
		},
	}
}

func added(l subnet.Lease) subnet.Event   { return subnet.Event{Type: subnet.EventAdded, Lease: l} }
func removed(l subnet.Lease) subnet.Event { return subnet.Event{Type: subnet.EventRemoved, Lease: l} }

// manyLeases returns n peers 10.<1+i/250>.<i%250>.0/24 (inside
// bigNetwork's 10.0.0.0/8) with distinct MACs and underlay addresses.
func manyLeases(n int) []subnet.Lease {
	out := make([]subnet.Lease, 0, n)
	for i := range n {
		sub := fmt.Sprintf("10.%d.%d.0/24", 1+i/250, i%250)
		ip := fmt.Sprintf("198.51.%d.%d", i/250, 1+i%250)
		mac := fmt.Sprintf("0e:00:00:00:%02x:%02x", i>>8, i&0xff)
		out = append(out, lease(sub, ip, mac))
	}
	return out
}

// bigNetwork widens the cluster network to 10.0.0.0/8 for manyLeases.
func bigNetwork(o *ReconcilerOptions) {
	o.Network = netip.MustParsePrefix("10.0.0.0/8")
	o.OwnSubnet = netip.MustParsePrefix("10.250.0.0/24")
}

// errNoBufs is the failure injected into writes: the kernel's answer when
// a socket buffer overflows.
var errNoBufs error = unix.ENOBUFS

// recordingKernel records the order of writes.
type recordingKernel struct {
	*backendtest.FakeKernel
	ops []string
}

func (k *recordingKernel) NeighSet(n *netlink.Neigh) error {
	k.ops = append(k.ops, opName(n, "add"))
	return k.FakeKernel.NeighSet(n)
}

func (k *recordingKernel) NeighDel(n *netlink.Neigh) error {
	k.ops = append(k.ops, opName(n, "del"))
	return k.FakeKernel.NeighDel(n)
}

func (k *recordingKernel) RouteReplace(r *netlink.Route) error {
	k.ops = append(k.ops, "route-add")
	return k.FakeKernel.RouteReplace(r)
}

func (k *recordingKernel) RouteDel(r *netlink.Route) error {
	k.ops = append(k.ops, "route-del")
	return k.FakeKernel.RouteDel(r)
}

func opName(n *netlink.Neigh, op string) string {
	if n.Family == unix.AF_BRIDGE {
		return "fdb-" + op
	}
	return "neighbour-" + op
}

func sameLines(got, want []string) bool {
	return slices.Equal(got, want) || (len(got) == 0 && len(want) == 0)
}

func nilLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// leaseFeed feeds leases into a reconciler through a peer set of its
// own, as the daemon does, one step at a time.
type leaseFeed struct{ set *peerset.Set }

func newLeaseFeed(t testing.TB, r *Reconciler) leaseFeed {
	t.Helper()
	set, err := peerset.New(peerset.Options{Network: r.opts.Network, OwnSubnet: r.opts.OwnSubnet, Peers: r})
	if err != nil {
		t.Fatal(err)
	}
	return leaseFeed{set}
}

func (l leaseFeed) replace(leases []subnet.Lease) { l.set.ReplacePeers(leases); l.set.Step() }
func (l leaseFeed) update(events []subnet.Event)  { l.set.UpdatePeers(events); l.set.Step() }
