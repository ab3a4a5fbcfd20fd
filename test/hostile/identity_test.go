package hostile

import (
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/subnet"
)

// TestSecondNodeWithSamePublicIP: node2 starts with node0's address as
// --public-ip (a shared SNAT address, a cloned env file). It must not
// take node0's lease: it exits non-zero with an error naming node0's
// lease key and identity and its own, node0's lease is unchanged, no
// lease is added, and the pods of node0 and node1 keep reaching each
// other. On today's main node2 takes node0's lease over (and writes its
// own VTEP MAC into it), so node1 sends node0's traffic to node2's MAC.
func TestSecondNodeWithSamePublicIP(t *testing.T) {
	c := newCluster(t, lab.Options{Nodes: 3, PodsPerNode: 1})
	node0, node1, node2 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	for _, n := range []*lab.Node{node0, node1} {
		c.start(n)
	}
	for _, n := range []*lab.Node{node0, node1} {
		labtest.WaitUp(t, c.Lab, n, upTimeout)
		if err := c.AddPods(labtest.Context(t, 30*time.Second), n); err != nil {
			t.Fatal(err)
		}
	}
	c.mustPingAll("before the impostor")
	before, err := c.NodeLease(labtest.Context(t, 10*time.Second), node0)
	if err != nil {
		t.Fatal(err)
	}
	if before.NodeID == "" {
		t.Fatalf("node0's lease carries no OverlaydNodeID: %+v", before)
	}

	imp := c.start(node2, "--public-ip="+node0.PublicIP.String())
	if err := labtest.WaitExit(t, imp, upTimeout, "node2 with node0's PublicIP"); err == nil {
		t.Errorf("node2 exited with status 0, want non-zero")
	}
	t.Logf("node2: %v\n%s", imp.Wait(), imp.LogTail(3))
	key := subnet.KeyName(node0.Subnet.Lease())
	if err := labtest.LogContains(imp, "two nodes share one PublicIP", key, before.NodeID, node0.PublicIP.String()); err != nil {
		t.Errorf("node2's error does not name node0's lease and identity: %v", err)
	}
	after, err := c.NodeLease(labtest.Context(t, 10*time.Second), node0)
	if err != nil {
		t.Fatal(err)
	}
	if !subnet.AttrsEqual(before, after) {
		t.Errorf("node0's lease changed:\nbefore %+v\nafter  %+v", before, after)
	}
	if stored := labtest.StoredLeases(t, c.Lab); len(stored) != 2 {
		t.Errorf("%d leases, want node0's and node1's only", len(stored))
	}
	labtest.RequireAlive(c.t, c.Lab, node0, node1)
	c.mustPingAll("after the impostor was refused")
}
