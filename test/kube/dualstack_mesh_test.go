package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

const kubeDualConfig = `{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8:244::/56","Backend":{"Type":"vxlan"}}`

// TestKubeDualStackMesh: overlayd in kube mode on three dual-stack Nodes
// (spec.podCIDRs of both families) of a real kube-apiserver. node0 is
// annotated as flanneld v0.28 leaves a dual-stack node: overlayd keeps
// both of its VTEP MACs. Every node publishes backend-v6-data and
// public-ipv6, and every pod reaches every other pod over IPv4 and IPv6.
func TestKubeDualStackMesh(t *testing.T) {
	c := startKubeCluster(t, lab.Options{Nodes: 3, PodsPerNode: 1, Underlay6: true})
	c.netConf = filepath.Join(t.TempDir(), "net-conf.json")
	if err := os.WriteFile(c.netConf, []byte(kubeDualConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	const mac4, mac6 = "0a:00:00:00:04:01", "0a:00:00:00:06:01"
	for i, n := range c.Nodes {
		ann := map[string]string{"node.alpha.kubernetes.io/ttl": "0"}
		if i == 0 {
			ann = flanneldDualStackNode(mac4, n.PublicIP.String(), mac6, n.UnderlayIP6.String())
		}
		cidrs := []string{podCIDR(i), fmt.Sprintf("2001:db8:244:%d::/64", i+1)}
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Annotations: ann},
			Spec: corev1.NodeSpec{PodCIDR: cidrs[0], PodCIDRs: cidrs}}
		if _, err := c.admin.CoreV1().Nodes().Create(labtest.Context(t, 10*time.Second), node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
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
	if got := deviceAddr(t, c.Nodes[0], lab.FlannelDevice); got != mac4 {
		t.Errorf("node0's %s MAC %s, want flanneld's %s from backend-data", lab.FlannelDevice, got, mac4)
	}
	if got := deviceAddr(t, c.Nodes[0], lab.FlannelDeviceV6); got != mac6 {
		t.Errorf("node0's %s MAC %s, want flanneld's %s from backend-v6-data", lab.FlannelDeviceV6, got, mac6)
	}
	for _, n := range c.Nodes {
		ann := c.node(n.Name).Annotations
		want := `{"VNI":1,"VtepMAC":"` + deviceAddr(t, n, lab.FlannelDeviceV6) + `"}`
		if ann[prefix+"public-ipv6"] != n.UnderlayIP6.String() || ann[prefix+"backend-v6-data"] != want {
			t.Errorf("%s annotations public-ipv6=%q backend-v6-data=%q, want %s and %s", n.Name,
				ann[prefix+"public-ipv6"], ann[prefix+"backend-v6-data"], n.UnderlayIP6, want)
		}
	}
	for _, ipv6 := range []bool{false, true} {
		m, err := c.PingAllFamilyRetry(labtest.Context(t, 60*time.Second), ipv6, 40, 250*time.Millisecond)
		if err != nil {
			t.Fatalf("pods cannot reach each other over IPv6=%t: %v\n%s", ipv6, err, m)
		}
	}
}
