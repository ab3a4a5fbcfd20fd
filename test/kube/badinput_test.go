package kube

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// TestKubeProblemsAreExplainedAndRetried: an unreachable API server, a
// node without podCIDR and a podCIDR outside the network are each logged
// with what to fix; the agents keep retrying without exiting, and come up
// once the cause is fixed.
func TestKubeProblemsAreExplainedAndRetried(t *testing.T) {
	c := startKubeCluster(t, lab.Options{Nodes: 2, PodsPerNode: 1})
	noCIDR, outside := c.Nodes[0], c.Nodes[1]
	c.createNode(noCIDR.Name, "", nil)
	c.createNode(outside.Name, "10.32.1.0/24", nil)

	c.proxy.SetReachable(false)
	for _, n := range c.Nodes {
		c.start(n, nil)
	}
	for _, n := range c.Nodes {
		labtest.Eventually(t, 30*time.Second, n.Name+" explains the unreachable API server", func() error {
			return labtest.LogContains(c.Agent(n), "is the API server reachable?")
		})
	}
	c.proxy.SetReachable(true)
	labtest.Eventually(t, 30*time.Second, "the missing podCIDR explained", func() error {
		return labtest.LogContains(c.Agent(noCIDR), `node \"node0\" has no podCIDR: was kube-controller-manager started with --allocate-node-cidrs and --cluster-cidr`)
	})
	labtest.Eventually(t, 30*time.Second, "the podCIDR outside the network explained", func() error {
		return labtest.LogContains(c.Agent(outside), "podCIDR 10.32.1.0/24 is outside the network config's Network 10.244.0.0/16")
	})
	time.Sleep(2 * time.Second) // a few retries
	for _, n := range c.Nodes {
		if a := c.Agent(n); a.Exited() {
			t.Fatalf("%s's agent exited: %v\n%s", n.Name, a.Wait(), a.LogTail(20))
		}
	}

	// kube-controller-manager assigns node0's podCIDR; node1 is re-created
	// with one inside the network (a podCIDR cannot change once set).
	ctx := labtest.Context(t, 30*time.Second)
	n := c.node(noCIDR.Name)
	n.Spec.PodCIDR, n.Spec.PodCIDRs = podCIDR(0), []string{podCIDR(0)}
	if _, err := c.admin.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.admin.CoreV1().Nodes().Delete(ctx, outside.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.createNode(outside.Name, podCIDR(1), nil)
	for i, n := range c.Nodes {
		if env := c.waitUp(n); env.Lease().String() != podCIDR(i) {
			t.Errorf("%s: subnet %s, want %s", n.Name, env.Lease(), podCIDR(i))
		}
		if err := c.AddPods(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	c.mustPingAll()
}
