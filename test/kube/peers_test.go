package kube

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// bringUp creates every lab node's Node with its usual podCIDR and
// annotations(n) (nil for none), starts overlayd on each as NODE_NAME,
// waits until each is up and, with pods, adds its pods.
func (c *kubeCluster) bringUp(annotations func(n *lab.Node) map[string]string, pods bool) {
	c.t.Helper()
	for i, n := range c.Nodes {
		var a map[string]string
		if annotations != nil {
			a = annotations(n)
		}
		c.createNode(n.Name, podCIDR(i), a)
	}
	for _, n := range c.Nodes {
		c.start(n, nil)
	}
	for _, n := range c.Nodes {
		c.waitUp(n)
		if !pods {
			continue
		}
		if err := c.AddPods(labtest.Context(c.t, 30*time.Second), n); err != nil {
			c.t.Fatal(err)
		}
	}
}

// flannelNode are the annotations of a Node flanneld runs on, with VTEP
// mac at public address ip.
func flannelNode(mac, ip string) map[string]string {
	return map[string]string{
		prefix + "kube-subnet-manager": "true",
		prefix + "backend-type":        "vxlan",
		prefix + "backend-data":        `{"VNI":1,"VtepMAC":"` + mac + `"}`,
		prefix + "public-ip":           ip,
	}
}

// peer is what a node's kernel holds for another node: the route to its
// subnet and the FDB entry of its VTEP MAC at its public address.
type peer struct {
	name, cidr, mac, ip string
}

// waitPeer waits up to timeout until every node of nodes has (present)
// or no longer has p's route and FDB entry.
func (c *kubeCluster) waitPeer(t testing.TB, nodes []*lab.Node, p peer, present bool, timeout time.Duration) {
	t.Helper()
	what := "forgets"
	if present {
		what = "programs"
	}
	for _, n := range nodes {
		labtest.Eventually(t, timeout, fmt.Sprintf("%s %s %s (%s)", n.Name, what, p.name, p.cidr), func() error {
			ok, err := c.hasEntries(n, p.cidr, p.mac, p.ip)
			if err != nil || ok != present {
				return fmt.Errorf("entries of %s present=%v (%v)", p.cidr, ok, err)
			}
			return nil
		})
	}
}

func (c *kubeCluster) deleteNode(t testing.TB, name string) {
	t.Helper()
	if err := c.admin.CoreV1().Nodes().Delete(labtest.Context(t, 10*time.Second), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete node %s: %v", name, err)
	}
}
