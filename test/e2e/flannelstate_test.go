package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
)

// TestThreeNodesCarryPodTraffic is the core promise: three overlayd nodes,
// every pod reaches every other pod across the overlay, pod-to-pod packets
// keep the source pod's address, and traffic leaving the pod network is
// masqueraded.
func TestThreeNodesCarryPodTraffic(t *testing.T) {
	c := startCluster(t, 3, 1)
	c.mustPingAll()

	pods := c.AllPods()
	from, to := pods[0], pods[2]
	if got := udpSourceSeen(t, from.NS, to.NS, to.IP); got != from.IP {
		t.Errorf("pod %s -> pod %s arrived from %s, want the pod's own address %s (no SNAT inside the pod network)", from, to, got, from.IP)
	}
	node0 := c.Nodes[0]
	if got := udpSourceSeen(t, from.NS, c.Hub, c.HubIP); got != node0.UnderlayIP {
		t.Errorf("pod %s -> %s (outside the pod network) arrived from %s, want the node address %s (masqueraded)", from, c.HubIP, got, node0.UnderlayIP)
	}
}

// TestStateMatchesFlanneld compares what overlayd leaves behind with
// docs/compatibility.md ("What flanneld leaves on a node"), field by field: lease JSON, subnet file, device,
// address, routes, neighbours, FDB and iptables.
func TestStateMatchesFlanneld(t *testing.T) {
	c := startCluster(t, 2, 0)
	self, peer := c.Nodes[0], c.Nodes[1]
	ctx := labtest.Context(t, 20*time.Second)
	selfMAC, selfLease := leaseOf(t, c, self)
	peerMAC, _ := leaseOf(t, c, peer)
	own, other := self.Subnet.Lease(), peer.Subnet.Lease()

	wantLease := withNodeID(t, fmt.Sprintf(`{"PublicIP":"%s","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"%s"}}`, self.PublicIP, selfMAC), selfLease)
	if selfLease != wantLease {
		t.Errorf("lease value\n got %s\nwant %s", selfLease, wantLease)
	}
	wantEnv := fmt.Sprintf("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=%s/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n", own.Addr().Next())
	if got, _ := os.ReadFile(self.SubnetFile); string(got) != wantEnv {
		t.Errorf("subnet file\n got %q\nwant %q", got, wantEnv)
	}
	link := netnsutil.MustExec(t, self.NS, "ip", "-d", "link", "show", "dev", "flannel.1")
	for _, want := range []string{
		"mtu 1450",
		"link/ether " + selfMAC,
		fmt.Sprintf("vxlan id 1 local %s dev ul0 srcport 0 0 dstport 8472 nolearning", self.UnderlayIP),
	} {
		if !strings.Contains(link, want) {
			t.Errorf("ip -d link show flannel.1 lacks %q:\n%s", want, link)
		}
	}
	addr := netnsutil.MustExec(t, self.NS, "ip", "-4", "addr", "show", "dev", "flannel.1")
	if want := fmt.Sprintf("inet %s/32 scope global flannel.1", own.Addr()); !strings.Contains(addr, want) {
		t.Errorf("ip addr lacks %q:\n%s", want, addr)
	}
	labtest.Eventually(t, 10*time.Second, "peer entries", func() error {
		st, err := c.DeviceState(ctx, self, lab.FlannelDevice)
		if err != nil {
			return err
		}
		return expectEntries(st, other, peerMAC, peer.PublicIP)
	})
	wantNAT := labtest.FlanneldNAT(own.String())
	if got := netnsutil.MustExec(t, self.NS, "iptables", "-t", "nat", "-S"); got != wantNAT {
		t.Errorf("iptables -t nat -S\n got:\n%s\nwant:\n%s", got, wantNAT)
	}
	wantFilter := labtest.FlanneldFilter
	if got := netnsutil.MustExec(t, self.NS, "iptables", "-S"); got != wantFilter {
		t.Errorf("iptables -S\n got:\n%s\nwant:\n%s", got, wantFilter)
	}
}

// expectEntries checks one peer's three entries in `ip`/`bridge` form.
func expectEntries(st lab.DeviceState, peerSubnet netip.Prefix, mac string, dst netip.Addr) error {
	route := fmt.Sprintf("%s via %s dev flannel.1 onlink", peerSubnet, peerSubnet.Addr())
	return expectPeerEntries(st, route, peerSubnet, mac, dst)
}

// expectPeerEntries checks one peer's route (the line route), neighbour
// and FDB entry.
func expectPeerEntries(st lab.DeviceState, route string, peerSubnet netip.Prefix, mac string, dst netip.Addr) error {
	want := []struct {
		kind  string
		lines []string
		line  string
	}{
		{"route", st.Routes, route},
		{"neighbour", st.Neigh, fmt.Sprintf("%s lladdr %s PERMANENT", peerSubnet.Addr(), mac)},
		{"fdb", st.FDB, fmt.Sprintf("%s dst %s self permanent", mac, dst)},
	}
	for _, w := range want {
		if !containsLine(strings.Join(w.lines, "\n"), w.line) {
			return fmt.Errorf("%s %q missing; have %q", w.kind, w.line, w.lines)
		}
	}
	return nil
}

// expectNoEntries checks that nothing of a peer is left on the device.
func expectNoEntries(st lab.DeviceState, peerSubnet netip.Prefix, mac string) error {
	for _, l := range st.Routes {
		if strings.HasPrefix(l, peerSubnet.String()+" ") {
			return fmt.Errorf("route still there: %s", l)
		}
	}
	for _, l := range st.Neigh {
		if strings.HasPrefix(l, peerSubnet.Addr().String()+" ") {
			return fmt.Errorf("neighbour still there: %s", l)
		}
	}
	for _, l := range st.FDB {
		if strings.HasPrefix(l, mac+" ") {
			return fmt.Errorf("fdb entry still there: %s", l)
		}
	}
	return nil
}

// leaseOf returns the node's VTEP MAC and its raw lease value in etcd.
func leaseOf(t *testing.T, c *cluster, n *lab.Node) (string, string) {
	t.Helper()
	raw, err := c.store.lease(labtest.Context(t, 5*time.Second), n.Subnet.Lease())
	if err != nil || raw == "" {
		t.Fatalf("lease %s of %s on %s: %v (value %q)", n.Subnet.Lease(), n.Name, c.store.api(), err, raw)
	}
	attrs, err := subnet.UnmarshalLeaseAttrs([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	mac, err := lab.VtepMAC(attrs)
	if err != nil {
		t.Fatal(err)
	}
	return mac, raw
}

// withNodeID is flanneld's lease value flannelJSON with the one field
// overlayd adds to every lease, OverlaydNodeID (its node identity, 32 hex
// digits; flanneld ignores it), taken from raw, the value overlayd wrote.
func withNodeID(t *testing.T, flannelJSON, raw string) string {
	t.Helper()
	attrs, err := subnet.UnmarshalLeaseAttrs([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(attrs.NodeID) != 32 || strings.Trim(attrs.NodeID, "0123456789abcdef") != "" {
		t.Errorf("lease %s: OverlaydNodeID %q, want 32 hex digits", raw, attrs.NodeID)
	}
	return strings.TrimSuffix(flannelJSON, "}") + `,"OverlaydNodeID":"` + attrs.NodeID + `"}`
}

// udpSourceSeen sends one datagram from namespace fromNS to dst and
// returns the source address the receiver in toNS saw.
func udpSourceSeen(t *testing.T, fromNS, toNS string, dst netip.Addr) netip.Addr {
	t.Helper()
	var conn net.PacketConn
	err := netnsutil.Do(toNS, func() error {
		var err error
		conn, err = net.ListenPacket("udp", netip.AddrPortFrom(dst, 0).String())
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", toNS, err)
	}
	defer conn.Close()
	port := conn.LocalAddr().(*net.UDPAddr).Port
	ctx := labtest.Context(t, 10*time.Second)
	out, err := lab.DialIn(ctx, fromNS, "udp", netip.AddrPortFrom(dst, uint16(port)).String())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 64)
	for i := 0; i < 20; i++ {
		out.Write([]byte("overlayd-e2e"))
		conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		_, from, err := conn.ReadFrom(buf)
		if err == nil {
			return from.(*net.UDPAddr).AddrPort().Addr().Unmap()
		}
	}
	t.Fatalf("no datagram from %s reached %s in %s", fromNS, dst, toNS)
	return netip.Addr{}
}

// TestStatusCommandShowsTheNode: `overlayd status` run on the node reads
// the daemon's /status and shows the lease, both addresses and the peers.
func TestStatusCommandShowsTheNode(t *testing.T) {
	c := startCluster(t, 2, 0)
	n, peer := c.Nodes[0], c.Nodes[1]
	labtest.Eventually(t, 10*time.Second, "status shows the peer programmed", func() error {
		out, err := netnsutil.Exec(labtest.Context(t, 5*time.Second), n.NS, overlaydBin, "status")
		if err != nil {
			return err
		}
		for _, want := range []string{
			"overlayd:  ready",
			fmt.Sprintf("bind %s, advertise %s", n.UnderlayIP, n.PublicIP),
			"lease:     " + n.Subnet.Lease().String(),
			"1/1 peers programmed",
			peer.Subnet.Lease().String(),
		} {
			if !strings.Contains(out, want) {
				return fmt.Errorf("status lacks %q:\n%s", want, out)
			}
		}
		return nil
	})
}
