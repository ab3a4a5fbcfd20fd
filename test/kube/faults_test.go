package kube

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// TestKubeAPIServerRestart: kube-apiserver is stopped for a few seconds
// and started again on the same address while the agents run. Routes
// and pod traffic stay throughout, no agent exits, and afterwards the
// agents' Node watches work again: a Node added (a flanneld node) is
// programmed on every node, and forgotten when it is deleted.
func TestKubeAPIServerRestart(t *testing.T) {
	c := startKubeCluster(t, lab.Options{Nodes: 2, PodsPerNode: 1})
	for i, n := range c.Nodes {
		c.createNode(n.Name, podCIDR(i), nil)
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

	c.api.Stop()
	time.Sleep(5 * time.Second)
	if m, err := c.PingAllRetry(labtest.Context(t, 10*time.Second), 2, 100*time.Millisecond); err != nil {
		t.Fatalf("with kube-apiserver down: %v\n%s", err, m)
	}
	c.requireAlive()
	c.api.restart(t)

	const mac, ip, cidr = "0e:00:00:00:00:98", "192.0.2.98", "10.244.8.0/24"
	c.createNode("flannel-node", cidr, map[string]string{
		prefix + "kube-subnet-manager": "true",
		prefix + "backend-type":        "vxlan",
		prefix + "backend-data":        `{"VNI":1,"VtepMAC":"` + mac + `"}`,
		prefix + "public-ip":           ip,
	})
	for _, n := range c.Nodes {
		labtest.Eventually(t, 60*time.Second, n.Name+" programs a node added after the restart", func() error {
			if ok, err := c.hasEntries(n, cidr, mac, ip); !ok {
				return fmt.Errorf("no entries for %s (%v)", cidr, err)
			}
			return nil
		})
	}
	if err := c.admin.CoreV1().Nodes().Delete(labtest.Context(t, 10*time.Second), "flannel-node", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		labtest.Eventually(t, 30*time.Second, n.Name+" forgets the deleted node", func() error {
			if ok, err := c.hasEntries(n, cidr, mac, ip); ok || err != nil {
				return fmt.Errorf("entries for %s still there (%v)", cidr, err)
			}
			return nil
		})
	}
	c.requireAlive()
	c.mustPingAll()
}

// requireAlive fails if any agent has exited.
func (c *kubeCluster) requireAlive() {
	c.t.Helper()
	for _, n := range c.Nodes {
		if a := c.Agent(n); a == nil || a.Exited() {
			c.t.Fatalf("overlayd on %s is not running", n.Name)
		}
	}
}

// TestKubeNodeRecreatedWithNewPodCIDR: a peer's Node is deleted and
// created again with the same name, a new podCIDR and a new VTEP MAC (a
// reinstalled machine). Every agent drops the old subnet's entries and
// programs the new ones: nothing of the old Node is left. Then a running
// agent's own Node is recreated with a new podCIDR: it exits with an
// error naming both subnets, and restarted it takes the new one, which
// the other node programs.
func TestKubeNodeRecreatedWithNewPodCIDR(t *testing.T) {
	c := startKubeCluster(t, lab.Options{Nodes: 2})
	for i, n := range c.Nodes {
		c.createNode(n.Name, podCIDR(i), nil)
	}
	for _, n := range c.Nodes {
		c.start(n, nil)
	}
	for _, n := range c.Nodes {
		c.waitUp(n)
	}
	peer := func(cidr, mac string) map[string]string {
		return map[string]string{
			prefix + "kube-subnet-manager": "true",
			prefix + "backend-type":        "vxlan",
			prefix + "backend-data":        `{"VNI":1,"VtepMAC":"` + mac + `"}`,
			prefix + "public-ip":           "192.0.2.97",
		}
	}
	const oldCIDR, oldMAC, newCIDR, newMAC = "10.244.7.0/24", "0e:00:00:00:00:97", "10.244.17.0/24", "0e:00:00:00:01:97"
	c.createNode("reinstalled", oldCIDR, peer(oldCIDR, oldMAC))
	c.waitEntries(oldCIDR, oldMAC, true)
	if err := c.admin.CoreV1().Nodes().Delete(labtest.Context(t, 10*time.Second), "reinstalled", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.createNode("reinstalled", newCIDR, peer(newCIDR, newMAC))
	c.waitEntries(newCIDR, newMAC, true)
	c.waitEntries(oldCIDR, oldMAC, false)
	c.requireAlive()

	// Its own Node recreated under a running agent: the agent's kernel
	// state and subnet file are for the old podCIDR, so it exits saying
	// so (the DaemonSet restarts it), and comes back on the new one.
	n0, n1 := c.Nodes[0], c.Nodes[1]
	if err := c.admin.CoreV1().Nodes().Delete(labtest.Context(t, 10*time.Second), n1.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	const movedCIDR = "10.244.30.0/24"
	c.createNode(n1.Name, movedCIDR, nil)
	select {
	case <-c.Agent(n1).Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("%s kept running on its old podCIDR", n1.Name)
	}
	if err := labtest.LogContains(c.Agent(n1), "podCIDR is now "+movedCIDR, "restart to use the new subnet"); err != nil {
		t.Error(err)
	}
	c.start(n1, nil)
	c.waitUp(n1)
	env, err := lab.ReadSubnetEnv(n1.SubnetFile) // the file as the ready agent left it
	if err != nil {
		t.Fatal(err)
	}
	if got := env.Lease().String(); got != movedCIDR {
		t.Errorf("%s restarted on %s, want its new podCIDR %s", n1.Name, got, movedCIDR)
	}
	labtest.Eventually(t, 30*time.Second, n0.Name+" programs the moved node", func() error {
		if ok, err := c.hasEntries(n0, movedCIDR, deviceMAC(t, n1), n1.UnderlayIP.String()); !ok {
			return fmt.Errorf("no entries for %s (%v)", movedCIDR, err)
		}
		return nil
	})
	c.requireAlive()
}

// waitEntries waits until every node has (or no longer has) the entries
// of a peer with cidr and mac at 192.0.2.97.
func (c *kubeCluster) waitEntries(cidr, mac string, present bool) {
	c.t.Helper()
	for _, n := range c.Nodes {
		labtest.Eventually(c.t, 30*time.Second, fmt.Sprintf("%s: entries of %s present=%v", n.Name, cidr, present), func() error {
			ok, err := c.hasEntries(n, cidr, mac, "192.0.2.97")
			if err != nil || ok != present {
				return fmt.Errorf("entries of %s present=%v (%v)", cidr, ok, err)
			}
			return nil
		})
	}
}
