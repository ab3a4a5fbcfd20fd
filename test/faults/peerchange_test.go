package faults

import (
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TestPeerChangesVtepMAC: node1 comes back with another VTEP MAC on the
// same subnet and address (a re-imaged host that kept its lease: the lease
// is rewritten while it is down and its device recreated). The other
// nodes replace the neighbour and FDB entry: no entry keeps the old MAC,
// none is duplicated, and traffic flows again once node1 is up.
func TestPeerChangesVtepMAC(t *testing.T) {
	t.Parallel()
	c := meshed(t, clusterOptions{nodes: 3, pods: 1})
	n1 := c.Nodes[1]
	oldMAC := c.nodeMAC(n1)
	const newMAC = "0e:00:00:00:0a:01"

	c.stop(n1, syscall.SIGTERM)
	netnsutil.MustExec(t, n1.NS, "ip", "link", "del", lab.FlannelDevice)
	c.rewriteNodeLease(n1, n1.PublicIP, newMAC)
	c.waitConverged(convergeTimeout, c.Nodes[0], c.Nodes[2])
	c.start(n1)
	c.waitUp(n1)

	if link := netnsutil.MustExec(t, n1.NS, "ip", "link", "show", lab.FlannelDevice); !strings.Contains(link, newMAC) {
		t.Fatalf("node1's new device does not carry the lease's MAC %s:\n%s", newMAC, link)
	}
	c.waitConverged(convergeTimeout)
	for _, n := range []*lab.Node{c.Nodes[0], c.Nodes[2]} {
		s := c.mustKernel(n)
		for _, e := range append(s.Neigh, s.FDB...) {
			if strings.Contains(e, oldMAC) {
				t.Errorf("%s keeps an entry with node1's old MAC: %s", n.Name, e)
			}
		}
	}
	c.mustPingAll()
}

// TestPeerChangesPublicIP: node1 moves to another underlay address and
// keeps its subnet and MAC (its lease is rewritten with the new PublicIP
// while it is down). The other nodes point the FDB entry at the new
// address (one entry, not one per address), and traffic flows over it.
func TestPeerChangesPublicIP(t *testing.T) {
	t.Parallel()
	c := meshed(t, clusterOptions{nodes: 3, pods: 1})
	n1 := c.Nodes[1]
	mac, oldIP := c.nodeMAC(n1), n1.PublicIP
	newIP := netip.MustParseAddr("192.0.2.111")

	c.stop(n1, syscall.SIGTERM)
	gw := strings.Fields(netnsutil.MustExec(t, n1.NS, "ip", "route", "show", "default"))
	netnsutil.MustExec(t, n1.NS, "ip", "addr", "del", oldIP.String()+"/24", "dev", n1.Iface)
	netnsutil.MustExec(t, n1.NS, "ip", "addr", "add", newIP.String()+"/24", "dev", n1.Iface)
	if out := netnsutil.MustExec(t, n1.NS, "ip", "route", "show", "default"); strings.TrimSpace(out) == "" {
		netnsutil.MustExec(t, n1.NS, append([]string{"ip", "route", "add"}, gw...)...)
	}
	n1.UnderlayIP, n1.PublicIP = newIP, newIP
	c.rewriteNodeLease(n1, newIP, mac)
	c.waitConverged(convergeTimeout, c.Nodes[0], c.Nodes[2])
	c.start(n1)
	c.waitUp(n1)

	c.waitConverged(convergeTimeout)
	for _, n := range []*lab.Node{c.Nodes[0], c.Nodes[2]} {
		for _, e := range c.mustKernel(n).FDB {
			if strings.Contains(e, "dst "+oldIP.String()+" ") {
				t.Errorf("%s still sends to node1's old address: %s", n.Name, e)
			}
		}
	}
	if local := netnsutil.MustExec(t, n1.NS, "ip", "-d", "link", "show", lab.FlannelDevice); !strings.Contains(local, "local "+newIP.String()) {
		t.Errorf("node1's device does not use its new address %s:\n%s", newIP, local)
	}
	c.mustPingAll()
}
