package backend

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/logtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/peerset"
	"github.com/overlayd/overlayd/subnet"
)

// The IPv6 data plane is the same Reconciler on flannel-v6.1, fed the
// peer set's IPv6 view. These tests run it against the real kernel of a
// namespace with flannel.1 and flannel-v6.1 over ul0 (192.0.2.1/24 and
// 2001:db8:1::1/64), next to an IPv4 reconciler sharing one registry.

var (
	v6Network = netip.MustParsePrefix("fd00:10:244::/56")
	v6Own     = netip.MustParsePrefix("fd00:10:244:99::/64")
)

// v6Peer is a dual-stack lease: IPv4 as lease(), IPv6 subnet
// fd00:10:244:<k>::/64 behind PublicIPv6 2001:db8:1::<k> with VTEP MAC
// 0e:00:00:00:06:<k>.
func v6Peer(k int) subnet.Lease {
	l := lease(fmt.Sprintf("10.244.%d.0/24", k), fmt.Sprintf("192.0.2.%d", k), fmt.Sprintf("0e:00:00:00:04:%02x", k))
	l.IPv6Subnet = netip.MustParsePrefix(fmt.Sprintf("fd00:10:244:%x::/64", k))
	l.Attrs.PublicIPv6 = netip.MustParseAddr(fmt.Sprintf("2001:db8:1::%x", k))
	l.Attrs.BackendV6Data = []byte(fmt.Sprintf(`{"VNI":1,"VtepMAC":"0e:00:00:00:06:%02x"}`, k))
	return l
}

// peersFor6 is the reconciler's input for leases: the IPv6 Set's output.
func peersFor6(leases []subnet.Lease) []peerset.Peer {
	c := &peerCapture{}
	set, err := peerset.New(peerset.Options{Network: v6Network, OwnSubnet: v6Own, SubnetLen: 64, Peers: c})
	if err != nil {
		panic(err)
	}
	peerset.NewIPv6Feed(set).ReplacePeers(leases)
	set.Step()
	return c.peers
}

// v6Node is newNSNode plus flannel-v6.1, made by EnsureDevice.
type v6Node struct {
	*nsNode
	dev Device
}

func newV6Node(t *testing.T) *v6Node {
	n := newNSNode(t)
	n.sh("ip", "addr", "add", "2001:db8:1::99/64", "dev", "ul0", "nodad")
	v := &v6Node{nsNode: n}
	if err := v.ensureDevice(); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *v6Node) ensureDevice() error {
	log := deviceTestLogger(new(bytes.Buffer))
	dev, err := EnsureDevice(v.h, DeviceSpec{VNI: 1, ExtLinkIndex: v.ul0, LocalIP: netip.MustParseAddr("2001:db8:1::99"),
		MAC: deviceMustMAC("0e:00:00:00:06:99")}, log)
	if err != nil {
		return err
	}
	v.dev = dev
	return EnsureDeviceAddress(v.h, dev, v6Own, v6Network, log)
}

func (v *v6Node) start(k Kernel, resync time.Duration, reg prometheus.Registerer, log *logtest.Buffer, mode RouteMode) (*Reconciler, func()) {
	return v.startReconciler(k, resync, prometheus.WrapRegistererWith(prometheus.Labels{"family": "ipv6"}, reg), log,
		func(o *ReconcilerOptions) {
			o.LinkName, o.LinkIndex = v.dev.Name, v.dev.Index
			o.Network, o.OwnSubnet, o.RouteMode = v6Network, v6Own, mode
			o.OnDeviceMissing = func(context.Context) (int, error) {
				err := v.ensureDevice()
				return v.dev.Index, err
			}
		})
}

// state6 is the IPv6 device's neighbours, FDB and routes, and the
// nexthop objects, as ip(8) and bridge(8) show them.
func (v *v6Node) state6() string {
	var b strings.Builder
	for _, cmd := range [][]string{
		{"ip", "-6", "neigh", "show", "dev", "flannel-v6.1"},
		{"bridge", "fdb", "show", "dev", "flannel-v6.1"},
		{"ip", "-6", "route", "show", "proto", "boot"},
		{"ip", "nexthop", "show", "dev", "flannel-v6.1"},
	} {
		out, err := netnsutil.Exec(context.Background(), v.name, cmd...)
		if err != nil && !strings.Contains(out, "Nexthop") {
			return err.Error()
		}
		b.WriteString("$ " + strings.Join(cmd, " ") + "\n")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line = strings.TrimRight(line, " "); line != "" && !isKernelFDB(line) {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

// isKernelFDB: the entries the kernel makes for the device itself (its
// own MAC, multicast) are not ours and not shown.
func isKernelFDB(line string) bool {
	return !strings.Contains(line, " dst ") && strings.Contains(line, "permanent") && !strings.Contains(line, "lladdr") &&
		!strings.Contains(line, " via ") && !strings.HasPrefix(line, "id ")
}

func (v *v6Node) waitState6(what, want string, log *logtest.Buffer) {
	v.t.Helper()
	v.waitFor(what, want, 10*time.Second, v.state6, log)
}

const v6Golden = `$ ip -6 neigh show dev flannel-v6.1
fd00:10:244:1:: lladdr 0e:00:00:00:06:01 PERMANENT
fd00:10:244:2:: lladdr 0e:00:00:00:06:02 PERMANENT
fd00:10:244:3:: lladdr 0e:00:00:00:06:03 PERMANENT
$ bridge fdb show dev flannel-v6.1
0e:00:00:00:06:01 dst 2001:db8:1::1 self permanent
0e:00:00:00:06:02 dst 2001:db8:1::2 self permanent
0e:00:00:00:06:03 dst 2001:db8:1::3 self permanent
$ ip -6 route show proto boot
fd00:10:244:1::/64 via fd00:10:244:1:: dev flannel-v6.1 metric 1024 onlink pref medium
fd00:10:244:2::/64 via fd00:10:244:2:: dev flannel-v6.1 metric 1024 onlink pref medium
fd00:10:244:3::/64 via fd00:10:244:3:: dev flannel-v6.1 metric 1024 onlink pref medium
$ ip nexthop show dev flannel-v6.1
`

var v6Leases = []subnet.Lease{v6Peer(1), v6Peer(2), v6Peer(3)}

// TestReconcilerIPv6InNamespace: first sync, drift repair, stale removal,
// device recreation and a zero-write restart on flannel-v6.1, with the
// IPv4 reconciler on flannel.1 beside it registering into the same
// registry (a family label tells their metrics apart).
func TestReconcilerIPv6InNamespace(t *testing.T) {
	v := newV6Node(t)
	log := &logtest.Buffer{}
	reg := prometheus.NewRegistry()
	r4, _ := v.startReconciler(v.h, time.Minute, prometheus.WrapRegistererWith(prometheus.Labels{"family": "ipv4"}, reg), log)
	r4.ReplacePeers(peersFor(r4, v6Leases))
	counting := &countingKernel{Kernel: v.h}
	r, stop := v.start(counting, 200*time.Millisecond, reg, log, RouteModeOnlink)
	r.ReplacePeers(peersFor6(v6Leases))
	waitSynced(t, r)
	waitSynced(t, r4)
	v.waitState6("first sync", v6Golden, log)
	if got := counting.writes.Load(); got != 9 {
		t.Errorf("first sync made %d writes, want 9", got)
	}
	v.waitState("IPv4 beside IPv6", nsGoldenFor(v6Leases), log)
	checkFamilyMetrics(t, reg)

	// Drift behind the reconciler's back, and stale entries: repaired and
	// removed by the next resync.
	v.sh("ip", "-6", "neigh", "del", "fd00:10:244:1::", "dev", "flannel-v6.1")
	v.sh("bridge", "fdb", "replace", "0e:00:00:00:06:02", "dev", "flannel-v6.1", "dst", "2001:db8:1::200", "self", "permanent")
	v.sh("ip", "-6", "route", "del", "fd00:10:244:3::/64")
	v.sh("ip", "-6", "neigh", "add", "fd00:10:244:77::", "lladdr", "0e:00:00:00:06:77", "dev", "flannel-v6.1", "nud", "permanent")
	v.sh("bridge", "fdb", "add", "0e:00:00:00:06:77", "dev", "flannel-v6.1", "dst", "2001:db8:1::77", "self", "permanent")
	v.sh("ip", "-6", "route", "add", "fd00:10:244:77::/64", "via", "fd00:10:244:77::", "dev", "flannel-v6.1", "onlink", "proto", "boot")
	v.waitState6("drift repaired", v6Golden, log)
	if d := value(r.metrics.drift[kindNeigh]) + value(r.metrics.drift[kindFDB]) + value(r.metrics.drift[kindRoute]); d < 6 {
		t.Errorf("drift_repaired_total sums to %v, want at least 6", d)
	}

	// A peer's IPv6 VTEP MAC changes: its neighbour and FDB entry follow.
	changed := v6Peer(2)
	changed.Attrs.BackendV6Data = []byte(`{"VNI":1,"VtepMAC":"0e:00:00:00:06:22"}`)
	r.ReplacePeers(peersFor6([]subnet.Lease{v6Peer(1), changed, v6Peer(3)}))
	macGolden := strings.ReplaceAll(v6Golden, "0e:00:00:00:06:02", "0e:00:00:00:06:22")
	v.waitState6("peer MAC changed", macGolden, log)

	// The device vanishes: recreated with its MAC, every entry back.
	v.sh("ip", "link", "del", "flannel-v6.1")
	v.waitState6("device recreated", macGolden, log)
	if out := v.sh("ip", "link", "show", "flannel-v6.1"); !strings.Contains(out, "0e:00:00:00:06:99") {
		t.Errorf("recreated device lost its MAC:\n%s", out)
	}
	stop()

	// A restart over a correct kernel writes nothing.
	// The kernel's multicast neighbours on flannel-v6.1 (MLD) are not ours.
	if out := v.sh("ip", "-6", "neigh", "show", "dev", "flannel-v6.1", "nud", "all"); !strings.Contains(out, "ff02::") {
		t.Logf("no multicast neighbour on flannel-v6.1 to leave alone:\n%s", out)
	}
	restarted := &countingKernel{Kernel: v.h}
	r2, _ := v.start(restarted, time.Minute, prometheus.NewRegistry(), log, RouteModeOnlink)
	r2.ReplacePeers(peersFor6([]subnet.Lease{v6Peer(1), changed, v6Peer(3)}))
	waitSynced(t, r2)
	if got := restarted.writes.Load(); got != 0 {
		t.Fatalf("restart wrote %d entries\n%s", got, log)
	}
	if s := r2.Status(); !s.InSync || s.Counts.PeersProgrammed != 3 || s.Counts.Kernel != (EntryCounts{3, 3, 3}) {
		t.Fatalf("status after restart: %+v", s.Counts)
	}
}

// nsGoldenFor is what flannel.1 holds for leases (their IPv4 halves).
func nsGoldenFor(leases []subnet.Lease) string {
	var neigh, fdb, route strings.Builder
	for _, l := range leases {
		k := l.Subnet.Addr().As4()[2]
		mac := fmt.Sprintf("0e:00:00:00:04:%02x", k)
		fmt.Fprintf(&neigh, "%s lladdr %s PERMANENT\n", l.Subnet.Addr(), mac)
		fmt.Fprintf(&fdb, "%s dst %s self permanent\n", mac, l.Attrs.PublicIP)
		fmt.Fprintf(&route, "%s via %s dev flannel.1 onlink\n", l.Subnet, l.Subnet.Addr())
	}
	return "$ ip neigh show dev flannel.1\n" + neigh.String() + "$ bridge fdb show dev flannel.1\n" + fdb.String() +
		"$ ip route\n" + route.String() + "192.0.2.0/24 dev ul0 proto kernel scope link src 192.0.2.1\n"
}

// checkFamilyMetrics: both reconcilers export overlayd_sync_* into one
// registry, told apart by the family label.
func checkFamilyMetrics(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		if mf.GetName() != "overlayd_sync_peers" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "family" {
					got[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	if len(got) != 2 || got["ipv4"] != 3 || got["ipv6"] != 3 {
		t.Errorf("overlayd_sync_peers by family: %v, want ipv4 and ipv6 at 3", got)
	}
}

// TestReconcilerIPv6NexthopModeInNamespace: nexthop route mode on
// flannel-v6.1, with ids in the IPv6 range so that they never replace the
// IPv4 device's objects of the same subnet index.
func TestReconcilerIPv6NexthopModeInNamespace(t *testing.T) {
	v := newV6Node(t)
	if _, err := netnsutil.Exec(context.Background(), v.name, "ip", "nexthop", "show"); err != nil {
		t.Skipf("kernel without nexthop objects: %v", err)
	}
	log := &logtest.Buffer{}
	reg := prometheus.NewRegistry()
	k4 := v.netlinkKernel()
	r4, _ := v.startReconciler(k4, time.Minute, prometheus.WrapRegistererWith(prometheus.Labels{"family": "ipv4"}, reg), log,
		func(o *ReconcilerOptions) { o.RouteMode = RouteModeNexthop })
	r4.ReplacePeers(peersFor(r4, v6Leases))
	k := v.netlinkKernel()
	r, _ := v.start(k, time.Minute, reg, log, RouteModeNexthop)
	r.ReplacePeers(peersFor6(v6Leases))
	waitSynced(t, r)
	waitSynced(t, r4)
	want := v6Golden
	for k := 1; k <= 3; k++ {
		want = strings.Replace(want, fmt.Sprintf("fd00:10:244:%d::/64 via fd00:10:244:%d:: dev flannel-v6.1 metric 1024 onlink pref medium", k, k),
			fmt.Sprintf("fd00:10:244:%d::/64 nhid %d via fd00:10:244:%d:: dev flannel-v6.1 metric 1024 onlink pref medium", k, 0xF2000000+k, k), 1)
		want += fmt.Sprintf("id %d via fd00:10:244:%d:: dev flannel-v6.1 scope link proto boot onlink\n", 0xF2000000+k, k)
	}
	v.waitState6("nexthop mode", want, log)
	v4 := v.sh("ip", "nexthop", "show", "dev", "flannel.1")
	if strings.Count(v4, "via 10.244.") != 3 {
		t.Fatalf("IPv4 nexthops lost beside the IPv6 ones:\n%s", v4)
	}
}
