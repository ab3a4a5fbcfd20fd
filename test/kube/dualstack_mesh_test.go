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

// TestKubeDualStackMesh: kube mode with EnableIPv6 on an underlay with
// both families. Each Node has an IPv4 and an IPv6 podCIDR; overlayd on
// each runs both planes from them, annotates backend-v6-data and
// public-ipv6, and every pod reaches every other over IPv4 and IPv6, the
// receiver seeing the sender's own pod address. node0 is annotated as
// flanneld v0.28 leaves a dual-stack node: overlayd keeps both of its
// VTEP MACs.
func TestKubeDualStackMesh(t *testing.T) {
	c := startKubeCluster(t, lab.Options{Nodes: 3, PodsPerNode: 1, Underlay6: true})
	c.netConf = filepath.Join(t.TempDir(), "net-conf.json")
	conf := `{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8:244::/56","Backend":{"Type":"vxlan"}}`
	if err := os.WriteFile(c.netConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	const mac4, mac6 = "0a:00:00:00:04:01", "0a:00:00:00:06:01"
	for i, n := range c.Nodes {
		var ann map[string]string
		if i == 0 {
			ann = flanneldDualStackNode(mac4, n.PublicIP.String(), mac6, n.UnderlayIP6.String())
		}
		cidrs := []string{podCIDR(i), fmt.Sprintf("2001:db8:244:%d::/64", i+1)}
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Annotations: ann}, Spec: corev1.NodeSpec{PodCIDR: cidrs[0], PodCIDRs: cidrs}}
		if _, err := c.admin.CoreV1().Nodes().Create(labtest.Context(t, 10*time.Second), node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes {
		c.start(n, nil)
	}
	for i, n := range c.Nodes {
		env := c.waitUp(n)
		if got, want := env.Lease6().String(), fmt.Sprintf("2001:db8:244:%d::/64", i+1); got != want {
			t.Errorf("%s: IPv6 subnet %s, want its IPv6 podCIDR %s", n.Name, got, want)
		}
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
	for _, ipv6 := range []bool{false, true} {
		m, err := c.PingAllFamilyRetry(labtest.Context(t, 60*time.Second), ipv6, 40, 250*time.Millisecond)
		if err != nil {
			t.Fatalf("IPv6=%t: pods cannot reach each other: %v\n%s", ipv6, err, m)
		}
		for _, from := range c.AllPods() {
			for _, to := range c.AllPods() {
				if from == to {
					continue
				}
				got, err := lab.SeenSource(labtest.Context(t, 10*time.Second), from.NS, to.NS, to.Addr(ipv6))
				if err != nil || got != from.Addr(ipv6) {
					t.Fatalf("%s -> %s: the receiver sees %s (%v), want %s", from, to, got, err, from.Addr(ipv6))
				}
			}
		}
	}
	for _, n := range c.Nodes {
		ann := c.node(n.Name).Annotations
		doc := labtest.MustStatus(t, n)
		want := fmt.Sprintf(`{"VNI":1,"VtepMAC":%q}`, doc.DeviceV6.MAC)
		if ann[prefix+"backend-v6-data"] != want || ann[prefix+"public-ipv6"] != n.UnderlayIP6.String() {
			t.Errorf("%s: backend-v6-data %q public-ipv6 %q, want %s and %s", n.Name,
				ann[prefix+"backend-v6-data"], ann[prefix+"public-ipv6"], want, n.UnderlayIP6)
		}
		if doc.SyncV6 == nil || !doc.SyncV6.InSync || doc.SyncV6.Counts.PeersProgrammed != 2 {
			t.Errorf("%s: IPv6 sync %+v", n.Name, doc.SyncV6)
		}
	}
}
