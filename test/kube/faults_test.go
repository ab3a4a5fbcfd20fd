package kube

import (
	"testing"
	"time"

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
	c.bringUp(nil, true)
	c.mustPingAll()

	c.api.Stop()
	time.Sleep(5 * time.Second)
	labtest.PingAll(t, c.Lab, "with kube-apiserver down", 10*time.Second, 2, 100*time.Millisecond)
	labtest.RequireAlive(c.t, c.Lab)
	c.api.restart(t)

	added := peer{name: "flannel-node", cidr: "10.244.8.0/24", mac: "0e:00:00:00:00:98", ip: "192.0.2.98"}
	c.createNode(added.name, added.cidr, flannelNode(added.mac, added.ip))
	c.waitPeer(t, c.Nodes, added, true, 60*time.Second)
	c.deleteNode(t, added.name)
	c.waitPeer(t, c.Nodes, added, false, 30*time.Second)
	labtest.RequireAlive(c.t, c.Lab)
	c.mustPingAll()
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
	c.bringUp(nil, false)
	old := peer{name: "reinstalled", cidr: "10.244.7.0/24", mac: "0e:00:00:00:00:97", ip: "192.0.2.97"}
	renewed := peer{name: "reinstalled", cidr: "10.244.17.0/24", mac: "0e:00:00:00:01:97", ip: "192.0.2.97"}
	c.createNode(old.name, old.cidr, flannelNode(old.mac, old.ip))
	c.waitPeer(t, c.Nodes, old, true, 30*time.Second)
	c.deleteNode(t, old.name)
	c.createNode(renewed.name, renewed.cidr, flannelNode(renewed.mac, renewed.ip))
	c.waitPeer(t, c.Nodes, renewed, true, 30*time.Second)
	c.waitPeer(t, c.Nodes, old, false, 30*time.Second)
	labtest.RequireAlive(c.t, c.Lab)

	// Its own Node recreated under a running agent: the agent's kernel
	// state and subnet file are for the old podCIDR, so it exits saying
	// so (the DaemonSet restarts it), and comes back on the new one.
	n0, n1 := c.Nodes[0], c.Nodes[1]
	c.deleteNode(t, n1.Name)
	const movedCIDR = "10.244.30.0/24"
	c.createNode(n1.Name, movedCIDR, nil)
	labtest.WaitExit(t, c.Agent(n1), 30*time.Second, n1.Name+" on its old podCIDR")
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
	moved := peer{name: n1.Name, cidr: movedCIDR, mac: deviceMAC(t, n1), ip: n1.UnderlayIP.String()}
	c.waitPeer(t, []*lab.Node{n0}, moved, true, 30*time.Second)
	labtest.RequireAlive(c.t, c.Lab)
}
