package faults

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TestKernelDrift: entries deleted, changed or added by hand, the VXLAN
// device deleted, and the underlay link going down and up (a peer joining
// meanwhile). After each, the node's entries match etcd again within a
// few resync intervals, entries that are not overlayd's are left alone,
// and pods reach each other.
func TestKernelDrift(t *testing.T) {
	t.Parallel()
	c := meshed(t, clusterOptions{nodes: 3, pods: 1})
	n0, n1, n2 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	dev := lab.FlannelDevice

	t.Run("entries deleted, changed and added by hand", func(t *testing.T) {
		s1, s2 := n1.Subnet.Lease(), n2.Subnet.Lease()
		mac1, mac2 := c.nodeMAC(n1), c.nodeMAC(n2)
		repairsBefore := sum(metrics(t, n0), "overlayd_sync_drift_repaired_total")
		script := []string{
			// missing: node1's route and FDB entry
			"ip route del " + s1.String(),
			fmt.Sprintf("bridge fdb del %s dev %s dst %s self", mac1, dev, n1.PublicIP),
			// changed: node2's neighbour MAC and FDB destination
			fmt.Sprintf("ip neigh replace %s lladdr 0e:de:ad:00:00:02 dev %s nud permanent", s2.Addr(), dev),
			fmt.Sprintf("bridge fdb replace %s dev %s dst 192.0.2.77 self permanent", mac2, dev),
			// stale: a peer nobody leases
			fmt.Sprintf("ip route add 10.244.222.0/24 via 10.244.222.0 dev %s onlink", dev),
			fmt.Sprintf("ip neigh add 10.244.222.0 lladdr 0e:de:ad:00:00:22 dev %s nud permanent", dev),
			fmt.Sprintf("bridge fdb add 0e:de:ad:00:00:22 dev %s dst 192.0.2.222 self permanent", dev),
			// not overlayd's: a route outside the cluster network
			fmt.Sprintf("ip route add 198.51.100.0/24 dev %s", dev),
		}
		for _, cmd := range script {
			netnsutil.MustExec(t, n0.NS, strings.Fields(cmd)...)
		}
		// overlayd may have repaired it already: it hears of changes to
		// its entries from the kernel's notifications.
		if err := c.converged(n0); err == nil && sum(metrics(t, n0), "overlayd_sync_drift_repaired_total") == repairsBefore {
			t.Fatal("the hand-made drift did not change node0's entries")
		}
		c.waitConverged(3*resyncInterval+convergeTimeout/3, n0)
		if got := sum(metrics(t, n0), "overlayd_sync_drift_repaired_total") - repairsBefore; got < 7 {
			t.Errorf("drift_repaired_total grew by %v, want at least 7 (2 missing, 2 changed, 3 stale)", got)
		}
		if out := netnsutil.MustExec(t, n0.NS, "ip", "route", "show", "198.51.100.0/24"); !strings.Contains(out, "dev "+dev) {
			t.Errorf("node0's own route 198.51.100.0/24 on %s was removed: %q", dev, out)
		}
		netnsutil.MustExec(t, n0.NS, "ip", "route", "del", "198.51.100.0/24")
		c.mustPingAll()
	})

	t.Run("VXLAN device deleted", func(t *testing.T) {
		link := netnsutil.MustExec(t, n0.NS, "ip", "-d", "link", "show", dev)
		mac := c.nodeMAC(n0)
		netnsutil.MustExec(t, n0.NS, "ip", "link", "del", dev)
		c.waitConverged(3*resyncInterval+convergeTimeout/3, n0)
		again := netnsutil.MustExec(t, n0.NS, "ip", "-d", "link", "show", dev)
		if !strings.Contains(again, "link/ether "+mac) {
			t.Errorf("recreated %s lost the lease's VTEP MAC %s:\n%s", dev, mac, again)
		}
		if linkAttrs(again) != linkAttrs(link) {
			t.Errorf("recreated %s differs:\nbefore %s\nafter  %s", dev, linkAttrs(link), linkAttrs(again))
		}
		addr := netnsutil.MustExec(t, n0.NS, "ip", "-o", "-4", "addr", "show", "dev", dev)
		if want := n0.Subnet.Lease().Addr().String() + "/32"; !strings.Contains(addr, want) {
			t.Errorf("recreated %s lacks its address %s: %q", dev, want, addr)
		}
		labtest.RequireAlive(c.t, c.Lab)
		c.mustPingAll()
	})

	t.Run("underlay link down and up", func(t *testing.T) {
		defaultRoute := strings.TrimSpace(netnsutil.MustExec(t, n0.NS, "ip", "route", "show", "default"))
		netnsutil.MustExec(t, n0.NS, "ip", "link", "set", n0.Iface, "down")
		// A peer joins while node0 cannot reach etcd or anyone.
		c.putPeers(c.newFakePeers(netip.MustParsePrefix("10.244.230.0/24"), 1))
		during(t, 2*resyncInterval, "underlay down", func() error {
			if c.Agent(n0).Exited() {
				return exitedError(c.Agent(n0))
			}
			return nil
		})
		netnsutil.MustExec(t, n0.NS, "ip", "link", "set", n0.Iface, "up")
		// The kernel flushes routes through a link that goes down: the
		// default route is the lab's, not overlayd's, so put it back.
		if strings.TrimSpace(netnsutil.MustExec(t, n0.NS, "ip", "route", "show", "default")) == "" {
			netnsutil.MustExec(t, n0.NS, append([]string{"ip", "route", "add"}, strings.Fields(defaultRoute)...)...)
		}
		c.waitConverged(reconnectTimeout, n0)
		labtest.RequireAlive(c.t, c.Lab)
		c.mustPingAll()
	})
}

// linkAttrs keeps the VXLAN attributes of `ip -d link show` that must
// survive a re-creation (vni, local, dev, port, learning, mtu).
func linkAttrs(out string) string {
	f := strings.Fields(out)
	var keep []string
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "mtu", "id", "local", "dev", "dstport":
			keep = append(keep, f[i]+" "+f[i+1])
		case "nolearning":
			keep = append(keep, f[i])
		}
	}
	return strings.Join(keep, " ")
}
