package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/vxlandata"
)

// The IPv6 data plane (issue 15): a dual-stack cluster on an underlay
// with both families, and an IPv6-only cluster on an IPv6-only underlay.
// One cluster per test; the IPv6 lifecycle (drift, MAC change, restart,
// lease deletion) runs on the dual-stack one in sequence.

const (
	ipv6Network  = "2001:db8:244::/56"
	dualConfig   = `{"Network":"10.244.0.0/16","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"` + ipv6Network + `","IPv6SubnetLen":64,"Backend":{"Type":"vxlan"}}`
	v6OnlyConfig = `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"` + ipv6Network + `","IPv6SubnetLen":64,"Backend":{"Type":"vxlan"}}`
)

// startFamilyCluster is startCluster on a flat underlay with IPv6 (and
// without IPv4 when only6), under config.
func startFamilyCluster(t *testing.T, only6 bool, config string, nodes, pods int, extra ...string) *cluster {
	t.Helper()
	netnsutil.RequireRoot(t)
	l := lab.NewT(t, lab.Options{Nodes: nodes, PodsPerNode: pods, CNIPlugin: overlaydBin, Underlay6: true, NoUnderlay4: only6})
	c := &cluster{Lab: l, t: t, extra: extra, store: v3Store{l}}
	// AddPods even with no pods: it reads each node's subnet file.
	c.bringUp(labtest.Context(t, 60*time.Second), config, true)
	return c
}

// mustPingAllFamily fails unless every pod reaches every other pod over
// one family.
func (c *cluster) mustPingAllFamily(ipv6 bool, when string) {
	c.t.Helper()
	m, err := c.PingAllFamilyRetry(labtest.Context(c.t, 40*time.Second), ipv6, 30, 250*time.Millisecond)
	if err != nil {
		c.t.Fatalf("%s: pods cannot reach each other over IPv6=%t: %v\n%s", when, ipv6, err, m)
	}
}

// mustSeeNoSNAT fails unless each pod, reached by every other pod over
// one family, sees the sender's own pod address: no SNAT inside the pod
// network (the nodes run with --ip-masq).
func (c *cluster) mustSeeNoSNAT(ipv6 bool) {
	c.t.Helper()
	ctx := labtest.Context(c.t, 30*time.Second)
	for _, from := range c.AllPods() {
		for _, to := range c.AllPods() {
			if from == to {
				continue
			}
			got, err := lab.SeenSource(ctx, from.NS, to.NS, to.Addr(ipv6))
			if err != nil {
				c.t.Fatalf("%s -> %s: %v", from, to, err)
			}
			if got != from.Addr(ipv6) {
				c.t.Fatalf("%s -> %s: the receiver sees %s, want the sender's own address %s (SNAT inside the pod network)",
					from, to, got, from.Addr(ipv6))
			}
		}
	}
}

// leaseKey is the etcd key of n's lease (both families' subnets).
func leaseKey(n *lab.Node) string {
	id := subnet.LeaseID{IPv6Subnet: n.Subnet.Lease6()}
	if n.Subnet.Subnet.IsValid() {
		id.Subnet = n.Subnet.Lease()
	}
	return subnet.LeaseIDKey(subnet.DefaultPrefix, id)
}

// leaseAttrs reads n's lease value.
func leaseAttrs(t *testing.T, c *cluster, n *lab.Node) subnet.LeaseAttrs {
	t.Helper()
	cli := labtest.EtcdClient(t, c.Lab)
	resp, err := cli.Get(labtest.Context(t, 5*time.Second), leaseKey(n))
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("lease %s of %s: %v (%d keys)", leaseKey(n), n.Name, err, len(resp.Kvs))
	}
	attrs, err := subnet.UnmarshalLeaseAttrs(resp.Kvs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	return attrs
}

// v6MAC is the IPv6 VTEP MAC in n's lease (BackendV6Data).
func v6MAC(t *testing.T, c *cluster, n *lab.Node) string {
	t.Helper()
	attrs := leaseAttrs(t, c, n)
	data, err := vxlandata.Unmarshal(attrs.BackendV6Data)
	if err != nil {
		t.Fatalf("BackendV6Data %s of %s: %v", attrs.BackendV6Data, n.Name, err)
	}
	return data.VtepMAC.String()
}

// expectEntries6 checks the IPv6 peer's route, neighbour and FDB entry on
// flannel-v6.1.
func expectEntries6(st lab.DeviceState, peerSubnet netip.Prefix, mac string, dst netip.Addr) error {
	route := fmt.Sprintf("%s via %s dev flannel-v6.1 metric 1024 onlink pref medium", peerSubnet, peerSubnet.Addr())
	return expectPeerEntries(st, route, peerSubnet, mac, dst)
}

func (c *cluster) eventuallyState6(n *lab.Node, what string, check func(lab.DeviceState) error) {
	c.t.Helper()
	ctx := labtest.Context(c.t, 30*time.Second)
	labtest.Eventually(c.t, 15*time.Second, what, func() error {
		st, err := c.DeviceState(ctx, n, lab.FlannelDeviceV6)
		if err != nil {
			return err
		}
		return check(st)
	})
}

// ipv6Writes sums overlayd_sync_writes_total of the IPv6 plane.
func ipv6Writes(t *testing.T, n *lab.Node) float64 {
	var total float64
	for _, entry := range []string{"neighbour", "fdb", "route"} {
		for _, op := range []string{"add", "del"} {
			total += labtest.Metric(t, n, fmt.Sprintf(`overlayd_sync_writes_total{entry=%q,family="ipv6",op=%q}`, entry, op))
		}
	}
	return total
}

// TestDualStackCluster: three dual-stack nodes with a real etcd. Every
// pod reaches every other over IPv4 and IPv6 with no SNAT on either;
// /status shows both planes; then, for IPv6: drift repair, a peer's MAC
// change, a restart with zero writes, and a deleted lease.
func TestDualStackCluster(t *testing.T) {
	c := startFamilyCluster(t, false, dualConfig, 3, 1, "--resync-interval=1s")
	c.mustPingAllFamily(false, "IPv4")
	c.mustPingAllFamily(true, "IPv6")
	c.mustSeeNoSNAT(false)
	c.mustSeeNoSNAT(true)
	n0, n1, n2 := c.Nodes[0], c.Nodes[1], c.Nodes[2]

	t.Run("status and lease show both families", func(t *testing.T) {
		doc := labtest.MustStatus(t, n0)
		if doc.Device == nil || doc.DeviceV6 == nil || doc.DeviceV6.Name != lab.FlannelDeviceV6 || doc.DeviceV6.MTU != 1430 ||
			doc.DeviceV6.Local != n0.UnderlayIP6.String() || doc.Underlay.Advertise6 != n0.UnderlayIP6.String() {
			t.Fatalf("devices %+v / %+v, underlay %+v", doc.Device, doc.DeviceV6, doc.Underlay)
		}
		if s := doc.SyncV6; s == nil || !s.InSync || s.Counts.PeersProgrammed != 2 || len(s.Peers) != 2 {
			t.Fatalf("IPv6 sync %+v", doc.SyncV6)
		}
		if doc.Lease == nil || doc.Lease.IPv6Subnet != n0.Subnet.Lease6().String() {
			t.Fatalf("lease %+v, want IPv6 subnet %s", doc.Lease, n0.Subnet.Lease6())
		}
		if n0.Subnet.MTU != 1430 {
			t.Errorf("FLANNEL_MTU %d, want 1430 (the IPv6 device's, the smaller)", n0.Subnet.MTU)
		}
		attrs := leaseAttrs(t, c, n0)
		if attrs.PublicIPv6 != n0.UnderlayIP6 || doc.DeviceV6.MAC != v6MAC(t, c, n0) {
			t.Fatalf("lease PublicIPv6 %s, BackendV6Data %s; device %s", attrs.PublicIPv6, attrs.BackendV6Data, doc.DeviceV6.MAC)
		}
		for _, family := range []string{"ipv4", "ipv6"} {
			if v := labtest.Metric(t, n0, fmt.Sprintf(`overlayd_sync_peers{family=%q}`, family)); v != 2 {
				t.Errorf("overlayd_sync_peers{family=%q} = %v, want 2", family, v)
			}
		}
	})

	t.Run("IPv6 drift repaired", func(t *testing.T) {
		other, mac := n1.Subnet.Lease6(), v6MAC(t, c, n1)
		netnsutil.MustExec(t, n0.NS, "ip", "-6", "route", "del", other.String())
		netnsutil.MustExec(t, n0.NS, "ip", "-6", "neigh", "replace", other.Addr().String(), "lladdr", "02:00:00:00:06:99", "dev", lab.FlannelDeviceV6, "nud", "permanent")
		netnsutil.MustExec(t, n0.NS, "bridge", "fdb", "del", mac, "dev", lab.FlannelDeviceV6, "dst", n1.UnderlayIP6.String(), "self")
		c.eventuallyState6(n0, "IPv6 drift repaired", func(st lab.DeviceState) error {
			if err := expectEntries6(st, other, mac, n1.UnderlayIP6); err != nil {
				return err
			}
			for _, l := range st.Neigh {
				if strings.Contains(l, "02:00:00:00:06:99") {
					return fmt.Errorf("altered neighbour still there: %s", l)
				}
			}
			return nil
		})
		c.mustPingAllFamily(true, "after IPv6 drift repair")
	})

	t.Run("IPv6 peer MAC change followed", func(t *testing.T) {
		// node1 comes back with another IPv6 VTEP MAC (its device and the
		// MAC in its lease replaced while it was down, as after a reboot
		// of a node that does not keep the MAC): the peers follow.
		if err := c.Agent(n1).Stop(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		netnsutil.MustExec(t, n1.NS, "ip", "link", "del", lab.FlannelDeviceV6)
		const newMAC = "0e:00:00:00:66:01"
		putLeaseMAC6(t, c, n1, newMAC)
		c.start(n1)
		c.waitUp(n1)
		if got := v6MAC(t, c, n1); got != newMAC {
			t.Fatalf("node1's lease has IPv6 MAC %s, want %s", got, newMAC)
		}
		for _, n := range []*lab.Node{n0, n2} {
			c.eventuallyState6(n, n.Name+" follows node1's new MAC", func(st lab.DeviceState) error {
				if err := expectEntries6(st, n1.Subnet.Lease6(), newMAC, n1.UnderlayIP6); err != nil {
					return err
				}
				return nil
			})
		}
		c.mustPingAllFamily(true, "after node1's IPv6 MAC changed")
	})

	t.Run("restart keeps the IPv6 subnet and MAC and writes nothing", func(t *testing.T) {
		mac, sub := v6MAC(t, c, n2), n2.Subnet.Lease6()
		ctx := labtest.Context(t, 30*time.Second)
		before := labtest.MustDeviceState(t, ctx, c.Lab, n2, lab.FlannelDeviceV6)
		if err := c.Agent(n2).Stop(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		c.mustPingAllFamily(true, "while node2's daemon is down")
		c.start(n2)
		c.waitUp(n2)
		if n2.Subnet.Lease6() != sub || v6MAC(t, c, n2) != mac {
			t.Fatalf("IPv6 subnet %s -> %s, MAC %s -> %s", sub, n2.Subnet.Lease6(), mac, v6MAC(t, c, n2))
		}
		waitInSync(t, n2, `overlayd_sync_in_sync{family="ipv6"}`)
		if w := ipv6Writes(t, n2); w != 0 {
			t.Fatalf("warm restart made %v IPv6 kernel writes, want 0", w)
		}
		after := labtest.MustDeviceState(t, ctx, c.Lab, n2, lab.FlannelDeviceV6)
		if fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("restart changed flannel-v6.1's entries:\nbefore %v\nafter  %v", before, after)
		}
	})

	t.Run("deleted lease leaves the peers' IPv6 entries", func(t *testing.T) {
		mac, sub := v6MAC(t, c, n2), n2.Subnet.Lease6()
		if err := c.Agent(n2).Stop(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		cli := labtest.EtcdClient(t, c.Lab)
		if _, err := cli.Delete(labtest.Context(t, 5*time.Second), leaseKey(n2)); err != nil {
			t.Fatal(err)
		}
		for _, n := range []*lab.Node{n0, n1} {
			c.eventuallyState6(n, n.Name+" forgets node2's IPv6 subnet", func(st lab.DeviceState) error {
				return expectNoEntries(st, sub, mac)
			})
		}
	})
}

// putLeaseMAC6 rewrites the VtepMAC of n's BackendV6Data in etcd,
// keeping the key's etcd lease (TTL).
func putLeaseMAC6(t *testing.T, c *cluster, n *lab.Node, mac string) {
	t.Helper()
	attrs := leaseAttrs(t, c, n)
	attrs.BackendV6Data = []byte(fmt.Sprintf(`{"VNI":1,"VtepMAC":%q}`, mac))
	value, err := subnet.MarshalLeaseAttrs(attrs, subnet.FormV028)
	if err != nil {
		t.Fatal(err)
	}
	cli := labtest.EtcdClient(t, c.Lab)
	if _, err := cli.Put(labtest.Context(t, 5*time.Second), leaseKey(n), string(value), clientv3.WithIgnoreLease()); err != nil {
		t.Fatal(err)
	}
}

// TestIPv6OnlyCluster: three nodes with EnableIPv4 false on an underlay
// without IPv4: only flannel-v6.1, every pod reaches every other over
// IPv6 with no SNAT.
func TestIPv6OnlyCluster(t *testing.T) {
	c := startFamilyCluster(t, true, v6OnlyConfig, 3, 1)
	c.mustPingAllFamily(true, "IPv6 only")
	c.mustSeeNoSNAT(true)
	n := c.Nodes[0]
	doc := labtest.MustStatus(t, n)
	if doc.Device != nil || doc.Sync != nil || doc.DeviceV6 == nil || doc.SyncV6 == nil || !doc.SyncV6.InSync ||
		doc.SyncV6.Counts.PeersProgrammed != 2 || doc.Lease == nil || doc.Lease.Subnet != "" {
		t.Fatalf("IPv6-only status: device %+v sync %+v deviceV6 %+v syncV6 %+v lease %+v", doc.Device, doc.Sync, doc.DeviceV6, doc.SyncV6, doc.Lease)
	}
	ctx := labtest.Context(t, 10*time.Second)
	if out, err := netnsutil.Exec(ctx, n.NS, "ip", "link", "show", lab.FlannelDevice); err == nil {
		t.Fatalf("flannel.1 exists in an IPv6-only network:\n%s", out)
	}
	checkIP6TablesAsFlanneld(t, n, ipv6Network) // mixed6_test.go
	if out := netnsutil.MustExec(t, n.NS, "iptables", "-t", "nat", "-S"); strings.Contains(out, "FLANNEL-POSTRTG") {
		t.Fatalf("IPv4 masquerade rules in an IPv6-only network:\n%s", out)
	}
	attrs := leaseAttrs(t, c, n)
	if attrs.PublicIP.IsValid() || len(attrs.BackendData) != 0 || attrs.PublicIPv6 != n.UnderlayIP6 {
		t.Fatalf("IPv6-only lease: PublicIP %s BackendData %s PublicIPv6 %s", attrs.PublicIP, attrs.BackendData, attrs.PublicIPv6)
	}
}
