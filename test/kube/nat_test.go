package kube

import (
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
)

// TestKubePublicIPOverwriteBehindNAT: every node sits behind its own 1:1
// NAT and gets no --public-ip; its Node's public-ip-overwrite annotation
// (how the field guides' public-IP clusters give each node its NAT
// address) is what it advertises, so peers send VXLAN to the NAT address
// and pods reach each other.
func TestKubePublicIPOverwriteBehindNAT(t *testing.T) {
	c := startKubeCluster(t, lab.Options{Nodes: 3, PodsPerNode: 1, Topology: lab.NAT})
	c.bringUp(func(n *lab.Node) map[string]string {
		return map[string]string{prefix + "public-ip-overwrite": n.PublicIP.String()}
	}, true)
	c.mustPingAll()
	for _, n := range c.Nodes {
		if n.PublicIP == n.UnderlayIP {
			t.Fatalf("%s: the NAT lab gave the same public and private address %s", n.Name, n.PublicIP)
		}
		c.checkAnnotations(n, n.PublicIP.String())
	}
	// node0 sends VXLAN for node1 to node1's NAT address.
	n1 := c.Nodes[1]
	p := peer{name: n1.Name, cidr: podCIDR(1), mac: vtepMAC(t, c.node(n1.Name)), ip: n1.PublicIP.String()}
	c.waitPeer(t, c.Nodes[:1], p, true, 10*time.Second)
}
