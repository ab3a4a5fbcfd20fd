package backend

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/internal/logtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
)

// netlinkKernel opens a NetlinkKernel on the node's namespace.
func (n *nsNode) netlinkKernel() *NetlinkKernel {
	n.t.Helper()
	ns, err := netns.GetFromName(n.name)
	if err != nil {
		n.t.Fatal(err)
	}
	defer ns.Close()
	k, err := NewNetlinkKernel(n.h, ns)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { k.Close() })
	return k
}

// batchFile writes lines to a file for `ip -batch` / `bridge -batch`.
func (n *nsNode) batch(tool string, lines []string) {
	n.t.Helper()
	path := filepath.Join(n.t.TempDir(), tool+".batch")
	var b []byte
	for _, l := range lines {
		b = append(b, l...)
		b = append(b, '\n')
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		n.t.Fatal(err)
	}
	n.sh(tool, "-batch", path)
}

// fillMixed programs count peers' entries on flannel.1 plus entries that
// are not ours: on ul0, outside the network, in another table, stale
// neighbours, an FDB entry with two destinations, a route with a metric,
// DirectRouting routes via ul0.
func (n *nsNode) fillMixed(count int) {
	n.t.Helper()
	var ip, bridge []string
	for i := 1; i <= count; i++ {
		sub := fmt.Sprintf("10.244.%d.%d", i/16, 16*(i%16)) // /28 subnets
		mac := fmt.Sprintf("0e:00:00:00:%02x:%02x", i>>8, i&0xff)
		ip = append(ip, fmt.Sprintf("neigh replace %s lladdr %s dev flannel.1 nud permanent", sub, mac))
		bridge = append(bridge, fmt.Sprintf("fdb replace %s dev flannel.1 dst 198.51.100.%d self permanent", mac, 1+i%250))
		if i%7 == 0 {
			ip = append(ip, fmt.Sprintf("route replace %s/32 via 192.0.2.%d dev ul0", sub, 2+i%200))
			continue
		}
		ip = append(ip, fmt.Sprintf("route replace %s/28 via %s dev flannel.1 onlink", sub, sub))
	}
	ip = append(ip,
		"neigh replace 10.244.200.0 lladdr 0e:00:00:00:cc:01 dev flannel.1 nud stale",
		"neigh replace 192.0.2.50 lladdr 0e:00:00:00:aa:01 dev ul0 nud permanent",
		"route replace 10.244.201.0/24 via 10.244.201.0 dev flannel.1 onlink metric 50",
		"route replace 10.244.202.0/24 via 10.244.202.0 dev flannel.1 onlink table 100",
		"route replace 203.0.113.0/24 via 192.0.2.9 dev ul0",
		"route replace 10.244.0.0/16 dev flannel.1",
	)
	bridge = append(bridge,
		"fdb append 0e:00:00:00:00:01 dev flannel.1 dst 203.0.113.7 self permanent",
		"fdb append 00:00:00:00:00:00 dev flannel.1 dst 203.0.113.8 self permanent",
		"fdb add 0e:00:00:00:bb:01 dev flannel.1 dst 203.0.113.9 vni 7 self permanent",
	)
	n.batch("ip", ip)
	n.batch("bridge", bridge)
}

// TestLeanDumpMatchesLibraryInNamespace compares the lean dumps with the
// library's on a real kernel, with and without DirectRouting ownership.
func TestLeanDumpMatchesLibraryInNamespace(t *testing.T) {
	n := newNSNode(t)
	n.fillMixed(400)
	k := n.netlinkKernel()
	link := linkIndex(t, n.h, "flannel.1")
	base := ownership{family: unix.AF_INET, network: netip.MustParsePrefix("10.244.0.0/16"),
		ownSubnet: netip.MustParsePrefix("10.244.99.0/24"), link: link}
	direct := base
	direct.extLink = n.ul0
	for _, tc := range []struct {
		name string
		own  ownership
	}{{"device only", base}, {"direct routing", direct}} {
		t.Run(tc.name, func(t *testing.T) {
			lib, lean := newBelievedState(), newBelievedState()
			if err := lib.loadLibrary(n.h, tc.own); err != nil {
				t.Fatal(err)
			}
			// Twice: the second load reuses the maps and the socket.
			for range 2 {
				if partial, err := lean.load(k, tc.own); err != nil || partial {
					t.Fatalf("lean load: partial %v, %v", partial, err)
				}
			}
			if len(lib.neigh) < 300 || len(lib.fdb) < 300 || len(lib.route) < 250 {
				t.Fatalf("library dump too small: %d neighbours, %d fdb, %d routes", len(lib.neigh), len(lib.fdb), len(lib.route))
			}
			if !reflect.DeepEqual(lib, lean) {
				t.Fatalf("lean dump differs from the library's:\nlibrary %d/%d/%d entries\nlean    %d/%d/%d entries\n%s",
					len(lib.neigh), len(lib.fdb), len(lib.route), len(lean.neigh), len(lean.fdb), len(lean.route), believedDiff(lib, lean))
			}
		})
	}
}

// believedDiff lists the keys that differ, for a failure message.
func believedDiff(a, b *believedState) string {
	var out string
	diffMap(&out, "neigh", a.neigh, b.neigh)
	diffMap(&out, "fdb", a.fdb, b.fdb)
	diffMap(&out, "route", a.route, b.route)
	return out
}

func diffMap[K comparable, V any](out *string, kind string, a, b map[K]V) {
	for k, v := range a {
		if w, ok := b[k]; !ok || !reflect.DeepEqual(v, w) {
			*out += fmt.Sprintf("%s %v: library %+v, lean %+v (present %v)\n", kind, k, v, w, ok)
		}
	}
	for k, w := range b {
		if _, ok := a[k]; !ok {
			*out += fmt.Sprintf("%s %v: only lean %+v\n", kind, k, w)
		}
	}
}

// countingLeanKernel counts writes and keeps the lean dumps and the
// nexthop writes of NetlinkKernel (counted too).
type countingLeanKernel struct {
	countingKernel
	lean *NetlinkKernel
}

func (k *countingLeanKernel) dumpBelieved(b *believedState, o ownership) error {
	return k.lean.dumpBelieved(b, o)
}

func (k *countingLeanKernel) nexthopSupport() error { return k.lean.nexthopSupport() }

func (k *countingLeanKernel) nexthopReplace(id uint32, gw netip.Addr, link int) error {
	k.writes.Add(1)
	return k.lean.nexthopReplace(id, gw, link)
}

func (k *countingLeanKernel) nexthopDel(id uint32) error {
	k.writes.Add(1)
	return k.lean.nexthopDel(id)
}

func (k *countingLeanKernel) routeReplaceNH(dst netip.Prefix, priority int, id uint32) error {
	k.writes.Add(1)
	return k.lean.routeReplaceNH(dst, priority, id)
}

// nsGoldenNexthop is nsGolden in nexthop route mode: the same neighbours
// and FDB entries, each route through a nexthop object whose id is the
// subnet's index under the reserved top byte (0xF1000000 = 4043309056).
const nsGoldenNexthop = nsGoldenNeighFDB + `$ ip route
10.244.37.0/24 nhid 4043309093 via 10.244.37.0 dev flannel.1 onlink
10.244.38.0/24 nhid 4043309094 via 10.244.38.0 dev flannel.1 onlink
10.244.39.0/24 nhid 4043309095 via 10.244.39.0 dev flannel.1 onlink
192.0.2.0/24 dev ul0 proto kernel scope link src 192.0.2.1
`

const nsNexthopsGolden = `id 4043309093 via 10.244.37.0 dev flannel.1 scope link proto boot onlink
id 4043309094 via 10.244.38.0 dev flannel.1 scope link proto boot onlink
id 4043309095 via 10.244.39.0 dev flannel.1 scope link proto boot onlink`

// routeModeCase is one route mode of the mode-table tests: the options,
// the kernel state it makes for nsPeers, its nexthop objects and the
// writes of a first sync.
type routeModeCase struct {
	mode        RouteMode
	golden      string
	nexthops    string
	firstWrites int64
}

var routeModeCases = []routeModeCase{
	{RouteModeOnlink, nsGolden, "", 9},
	{RouteModeNexthop, nsGoldenNexthop, nsNexthopsGolden, 12},
}

func withRouteMode(m RouteMode) func(*ReconcilerOptions) {
	return func(o *ReconcilerOptions) { o.RouteMode = m }
}

// nexthopState is `ip nexthop show dev flannel.1`, sorted.
func (n *nsNode) nexthopState() string {
	out, err := netnsutil.Exec(context.Background(), n.name, "ip", "nexthop", "show", "dev", "flannel.1")
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// waitModeState waits for the kernel state and the nexthops of tc.
func (n *nsNode) waitModeState(what string, tc routeModeCase, log *logtest.Buffer) {
	n.t.Helper()
	n.waitState(what, tc.golden, log)
	deadline := time.Now().Add(10 * time.Second)
	for got := n.nexthopState(); got != tc.nexthops; got = n.nexthopState() {
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: nexthops\n%s\nwant\n%s\nlog:\n%s", what, got, tc.nexthops, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReconcilerLeanDumpsInNamespace runs the reconciler on the real
// kernel through NetlinkKernel, in each route mode: first sync, drift
// repair, restart with no writes.
func TestReconcilerLeanDumpsInNamespace(t *testing.T) {
	for _, tc := range routeModeCases {
		t.Run(string(tc.mode), func(t *testing.T) {
			n := newNSNode(t)
			log := &logtest.Buffer{}
			lean := n.netlinkKernel()
			k := &countingLeanKernel{countingKernel: countingKernel{Kernel: lean}, lean: lean}
			r, stop := n.startReconciler(k, 200*time.Millisecond, prometheus.NewRegistry(), log, withRouteMode(tc.mode))
			r.ReplacePeers(peersFor(r, append([]subnet.Lease{lease("10.244.99.0/24", "192.0.2.1", "d6:87:b6:fa:f7:31")}, nsPeers...)))
			waitSynced(t, r)
			n.waitModeState("first sync", tc, log)
			if got := k.writes.Load(); got != tc.firstWrites {
				t.Errorf("first sync made %d writes, want %d", got, tc.firstWrites)
			}
			n.sh("ip", "neigh", "del", "10.244.37.0", "dev", "flannel.1")
			n.sh("bridge", "fdb", "append", "0e:00:00:00:00:38", "dev", "flannel.1", "dst", "192.0.2.200", "self", "permanent")
			n.sh("ip", "route", "add", "10.244.77.0/24", "via", "10.244.77.0", "dev", "flannel.1", "onlink")
			if tc.mode == RouteModeNexthop {
				// Deleting a nexthop takes its route with it; a stale one
				// of ours, and a route through it, must go.
				n.sh("ip", "nexthop", "del", "id", "4043309095")
				// The reconciler hears of the stale nexthop at once and may
				// delete it before the route through it is added: then that
				// drift is repaired already.
				n.sh("ip", "nexthop", "add", "id", "4043309134", "via", "10.244.78.0", "dev", "flannel.1", "onlink")
				out, err := exec.Command("ip", "-n", n.name, "route", "add", "10.244.78.0/24", "nhid", "4043309134").CombinedOutput()
				if err != nil && !strings.Contains(string(out), "Nexthop id does not exist") {
					t.Fatalf("ip route add 10.244.78.0/24 nhid 4043309134: %v: %s", err, out)
				}
			}
			n.waitModeState("drift repaired", tc, log)
			// The device vanishes (its nexthops with it): recreated, every
			// entry comes back.
			n.sh("ip", "link", "del", "flannel.1")
			n.waitModeState("device recreated", tc, log)
			stop()

			restarted := &countingLeanKernel{countingKernel: countingKernel{Kernel: lean}, lean: lean}
			r2, _ := n.startReconciler(restarted, time.Minute, prometheus.NewRegistry(), log, withRouteMode(tc.mode))
			r2.ReplacePeers(peersFor(r2, nsPeers))
			waitSynced(t, r2)
			if got := restarted.writes.Load(); got != 0 {
				t.Fatalf("restart wrote %d entries\n%s", got, log)
			}
			s := r2.Status()
			if s.Counts.Kernel != (EntryCounts{3, 3, 3}) || s.Counts.KernelNexthops != strings.Count(tc.nexthops, "id ") ||
				s.RouteMode != string(tc.mode) {
				t.Fatalf("status after restart: mode %s (%s), %+v", s.RouteMode, s.RouteModeReason, s.Counts)
			}
		})
	}
}

// BenchmarkFullResyncIdle10kNamespaceLean is
// BenchmarkFullResyncIdle10kNamespace with the lean dumps of NetlinkKernel.
func BenchmarkFullResyncIdle10kNamespaceLean(b *testing.B) {
	n := newNSNode(b)
	lean := n.netlinkKernel()
	k := &countingLeanKernel{countingKernel: countingKernel{Kernel: lean}, lean: lean}
	benchIdleResync(b, n, k, &k.writes)
}
