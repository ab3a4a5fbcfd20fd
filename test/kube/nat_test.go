package kube

import (
	"fmt"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// TestKubePublicIPOverwriteBehindNAT: every node sits behind its own 1:1
// NAT and gets no --public-ip; its Node's public-ip-overwrite annotation
// (how the field guides' public-IP clusters give each node its NAT
// address) is what it advertises, so peers send VXLAN to the NAT address
// and pods reach each other.
func TestKubePublicIPOverwriteBehindNAT(t *testing.T) {
	c := startKubeCluster(t, lab.Options{Nodes: 3, PodsPerNode: 1, Topology: lab.NAT})
	for i, n := range c.Nodes {
		c.createNode(n.Name, podCIDR(i), map[string]string{prefix + "public-ip-overwrite": n.PublicIP.String()})
	}
	for _, n := range c.Nodes {
		c.start(n, nil)
	}
	for _, n := range c.Nodes {
		c.waitUp(n)
		if err := c.AddPods(labtest.Context(t, 30*time.Second), n); err != nil {
			t.Fatal(err)
		}
	}
	c.mustPingAll()
	for _, n := range c.Nodes {
		if n.PublicIP == n.UnderlayIP {
			t.Fatalf("%s: the NAT lab gave the same public and private address %s", n.Name, n.PublicIP)
		}
		c.checkAnnotations(n, n.PublicIP.String())
	}
	// node0 sends VXLAN for node1 to node1's NAT address.
	peer := c.Nodes[1]
	mac := vtepMAC(t, c.node(peer.Name))
	labtest.Eventually(t, 10*time.Second, "node0's FDB entry for node1", func() error {
		if ok, err := c.hasEntries(c.Nodes[0], podCIDR(1), mac, peer.PublicIP.String()); !ok {
			return fmt.Errorf("no entries towards %s (%v)", peer.PublicIP, err)
		}
		return nil
	})
}
