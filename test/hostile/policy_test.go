package hostile

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/statusdoc"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/vxlandata"
)

// hostileLease is a lease another machine writes to steer traffic, and
// the refusal each node must show for it.
type hostileLease struct {
	name     string
	subnet   netip.Prefix
	publicIP netip.Addr
	// reason is the refusal on every node; byNode overrides it (""
	// there: the lease is harmless to that node and accepted).
	reason string
	byNode map[string]string
}

func (h hostileLease) reasonOn(n *lab.Node) string {
	if r, ok := h.byNode[n.Name]; ok {
		return r
	}
	return h.reason
}

// TestHostilePeerLeases writes leases that would steer traffic into a
// running three-node cluster: a /25 inside node1's subnet, a subnet
// outside the network, a subnet of the wrong length, and PublicIPs that
// are node0's own address, loopback and multicast. Every node refuses
// each (except the own-address lease on the nodes it is not about), lists
// it in /status and counts it in overlayd_peer_leases_refused; no kernel
// entry is made for it; node1's pods stay reachable from node1 itself, and
// every pod still reaches every other.
//
// On a build without the lease policy (main before issue 14) every node
// installs routes for all but the out-of-network lease, FDB entries
// towards loopback, multicast and node0's own address, node1 loses its own
// pods to the /25 route on flannel.1, and /status has no refused leases.
func TestHostilePeerLeases(t *testing.T) {
	l := labtest.StartCluster(t, overlaydBin, lab.Options{Nodes: 3, PodsPerNode: 1})
	labtest.MustPingAll(t, l)
	n0, n1 := l.Nodes[0], l.Nodes[1]
	free := freeSubnets(l, 5)
	own1 := n1.Subnet.Lease()
	farAway := netip.MustParseAddr("192.0.2.200")
	attacks := []hostileLease{
		{name: "inside node1's subnet", subnet: netip.PrefixFrom(own1.Addr(), 25), publicIP: farAway,
			reason: "subnet_length", byNode: map[string]string{n1.Name: "overlaps_own_subnet"}},
		{name: "outside the network", subnet: netip.MustParsePrefix("10.9.0.0/24"), publicIP: farAway, reason: "outside_network"},
		{name: "wrong length", subnet: netip.PrefixFrom(free[0].Addr(), 25), publicIP: farAway, reason: "subnet_length"},
		{name: "node0's own address", subnet: free[1], publicIP: n0.PublicIP,
			byNode: map[string]string{n0.Name: "public_ip_ours"}},
		{name: "loopback", subnet: free[2], publicIP: netip.MustParseAddr("127.0.0.1"), reason: "public_ip_unusable"},
		{name: "multicast", subnet: free[3], publicIP: netip.MustParseAddr("239.1.2.3"), reason: "public_ip_unusable"},
	}
	putLeases(t, l, attacks)
	// A harmless lease written last: once a node has its route, the node
	// has taken every attack (the watch delivers in order).
	marker := hostileLease{name: "marker", subnet: free[4], publicIP: netip.MustParseAddr("192.0.2.201")}
	putLeases(t, l, []hostileLease{marker})
	for _, n := range l.Nodes {
		labtest.Eventually(t, 20*time.Second, n.Name+" takes the leases", func() error {
			st, err := l.DeviceState(labtest.Context(t, 5*time.Second), n, lab.FlannelDevice)
			if err != nil {
				return err
			}
			if !hasRoute(st, marker.subnet) {
				return fmt.Errorf("no route for %s yet: %q", marker.subnet, st.Routes)
			}
			return nil
		})
		checkNoEntries(t, l, n, attacks)
	}

	// node1 still reaches its own pods: no route of the /25 sends them out
	// over VXLAN.
	ctx := labtest.Context(t, 20*time.Second)
	for _, p := range n1.Pods {
		if err := lab.PingFrom(ctx, n1.NS, p.IP); err != nil {
			t.Errorf("node1 cannot reach its own pod %s: %v", p, err)
		}
	}
	labtest.MustPingAll(t, l)

	for _, n := range l.Nodes {
		doc := labtest.MustStatus(t, n)
		if err := refusalsListed(doc.RefusedLeases, n, attacks); err != nil {
			t.Error(err)
		}
		for reason, want := range wantCounts(n, attacks) {
			series := fmt.Sprintf("overlayd_peer_leases_refused{reason=%q}", reason)
			if got, err := labtest.MetricValue(labtest.Context(t, 5*time.Second), n, series); err != nil || got != want {
				t.Errorf("%s: %s = %v (%v), want %v", n.Name, series, got, err, want)
			}
		}
	}
	key := subnet.KeyName(attacks[0].subnet)
	if err := labtest.LogContains(l.Agent(n1), "refusing peer lease", key, "field=Subnet", "value="+attacks[0].subnet.String()); err != nil {
		t.Errorf("node1 did not log the refusal with key, field and value: %v", err)
	}
}

func hasRoute(st lab.DeviceState, p netip.Prefix) bool {
	return slices.ContainsFunc(st.Routes, func(r string) bool { return strings.HasPrefix(r, p.String()+" ") })
}

// freeSubnets returns n /24s of the lab network that no node holds.
func freeSubnets(l *lab.Lab, n int) []netip.Prefix {
	used := map[netip.Prefix]bool{}
	for _, node := range l.Nodes {
		used[node.Subnet.Lease()] = true
	}
	var out []netip.Prefix
	for i := 250; len(out) < n; i-- {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 24)
		if !used[p] {
			out = append(out, p)
		}
	}
	return out
}

// putLeases writes the attacks as flannel-form vxlan leases (no TTL), as
// a script or a broken node with write access to etcd would.
func putLeases(t *testing.T, l *lab.Lab, attacks []hostileLease) {
	t.Helper()
	cli := labtest.EtcdClient(t, l)
	ctx := labtest.Context(t, 20*time.Second)
	for i, a := range attacks {
		data, err := vxlandata.Marshal(vxlandata.Data{VNI: 1, VtepMAC: net.HardwareAddr{0x0e, 0xba, 0xd0, 0, 0, byte(i + 1)}}, true)
		if err != nil {
			t.Fatal(err)
		}
		value, err := subnet.MarshalLeaseAttrs(subnet.LeaseAttrs{PublicIP: a.publicIP, BackendType: subnet.BackendVXLAN, BackendData: data}, subnet.FormV028)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, subnet.LeaseKey(subnet.DefaultPrefix, a.subnet), string(value)); err != nil {
			t.Fatalf("%s: %v", a.name, err)
		}
	}
}

func refusalsListed(list []statusdoc.RefusedLease, n *lab.Node, attacks []hostileLease) error {
	for _, a := range attacks {
		want := a.reasonOn(n)
		found := slices.ContainsFunc(list, func(r statusdoc.RefusedLease) bool {
			return r.Subnet == a.subnet.String() && r.Reason == want && r.Field != "" && r.Message != ""
		})
		if want != "" && !found {
			return fmt.Errorf("%s: no refusal %s of %s (%s) in %+v", n.Name, want, a.subnet, a.name, list)
		}
		if want == "" && slices.ContainsFunc(list, func(r statusdoc.RefusedLease) bool { return r.Subnet == a.subnet.String() }) {
			return fmt.Errorf("%s: %s (%s) refused, want it accepted here", n.Name, a.subnet, a.name)
		}
	}
	return nil
}

func wantCounts(n *lab.Node, attacks []hostileLease) map[string]float64 {
	out := map[string]float64{}
	for _, a := range attacks {
		if r := a.reasonOn(n); r != "" {
			out[r]++
		}
	}
	return out
}

// checkNoEntries fails unless n's kernel has no route for a refused
// subnet and no FDB entry towards a refused PublicIP, while each real
// peer keeps its route.
func checkNoEntries(t *testing.T, l *lab.Lab, n *lab.Node, attacks []hostileLease) {
	t.Helper()
	st := labtest.MustDeviceState(t, labtest.Context(t, 10*time.Second), l, n, lab.FlannelDevice)
	for _, a := range attacks {
		if a.reasonOn(n) == "" {
			continue
		}
		if hasRoute(st, a.subnet) {
			t.Errorf("%s: route for the refused %s (%s): %q", n.Name, a.subnet, a.name, st.Routes)
		}
		for _, f := range st.FDB {
			if strings.Contains(f, " dst "+a.publicIP.String()+" ") {
				t.Errorf("%s: FDB entry towards the refused PublicIP %s (%s): %s", n.Name, a.publicIP, a.name, f)
			}
		}
	}
	for _, peer := range l.Nodes {
		if peer == n {
			continue
		}
		if !hasRoute(st, peer.Subnet.Lease()) {
			t.Errorf("%s: the route of peer %s is gone: %q", n.Name, peer.Name, st.Routes)
		}
	}
}
