package kube

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overlayd/overlayd/internal/kubeapi"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/subnet"
	kubesubnet "github.com/overlayd/overlayd/subnet/kube"
)

// flanneldKubeArgs runs the real flanneld in kube mode on n, as the
// DaemonSet would, with the net-conf.json at netConf.
func (c *kubeCluster) flanneldKubeArgs(bin string, n *lab.Node, netConf string) []string {
	return []string{"env", "NODE_NAME=" + n.Name, bin,
		"--kube-subnet-mgr", "--kubeconfig-file=" + c.kubeconfig, "--net-config-path=" + netConf,
		"--iface=" + n.Iface, "--public-ipv6=" + n.UnderlayIP6.String(), "--subnet-file=" + n.SubnetFile, "--ip-masq",
		"--healthz-ip=" + n.UnderlayIP.String(), "--healthz-port=" + strconv.Itoa(lab.FlanneldHealthzPort)}
}

// TestKubeFlanneldIPv6Annotations runs the real flanneld v0.28.10 in kube
// mode on a dual-stack Node and on an IPv6-only Node, and checks that
// overlayd reads what it wrote (both subnets, public-ipv6, the IPv6 VTEP
// MAC) and, taking the Node over with the same addresses and MACs,
// writes nothing: its annotations are flanneld's, key for key.
func TestKubeFlanneldIPv6Annotations(t *testing.T) {
	bin := lab.FlanneldBinaryT(t)
	c := startKubeCluster(t, lab.Options{Nodes: 2, Underlay6: true})
	confs := []string{
		`{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8:100::/56","Backend":{"Type":"vxlan"}}`,
		`{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8:100::/56","Backend":{"Type":"vxlan"}}`,
	}
	cidrs := [][]string{{"10.244.1.0/24", "2001:db8:100:1::/64"}, {"2001:db8:100:2::/64"}}
	for i, n := range c.Nodes {
		// As the kubelet leaves it: flanneld panics on a Node without annotations.
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0"}}, Spec: corev1.NodeSpec{PodCIDR: cidrs[i][0], PodCIDRs: cidrs[i]}}
		if _, err := c.admin.CoreV1().Nodes().Create(labtest.Context(t, 10*time.Second), node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(t.TempDir(), "net-conf.json")
		if err := os.WriteFile(conf, []byte(confs[i]), 0o644); err != nil {
			t.Fatal(err)
		}
		a := labtest.StartAgent(t, c.Lab, n, c.flanneldKubeArgs(bin, n, conf))
		labtest.Eventually(t, 45*time.Second, "flanneld's public-ipv6 annotation on "+n.Name, func() error {
			if a.Exited() {
				t.Fatalf("flanneld on %s exited: %v\n%s", n.Name, a.Wait(), a.LogTail(40))
			}
			if c.node(n.Name).Annotations[prefix+"public-ipv6"] == "" {
				return errors.New("no public-ipv6 annotation yet")
			}
			return nil
		})
	}
	ann, err := kubesubnet.NewAnnotations(kubesubnet.DefaultAnnotationPrefix)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range c.Nodes {
		node := c.node(n.Name)
		t.Logf("flanneld's annotations on %s: %v", n.Name, node.Annotations)
		l, err := ann.NodeLease(node)
		if err != nil {
			t.Fatalf("overlayd cannot read flanneld's %s: %v", n.Name, err)
		}
		want := subnet.LeaseID{IPv6Subnet: netip.MustParsePrefix(cidrs[i][len(cidrs[i])-1])}
		if i == 0 {
			want.Subnet = netip.MustParsePrefix(cidrs[i][0])
		}
		if l.ID() != want || l.Attrs.PublicIPv6 != n.UnderlayIP6 || len(l.Attrs.BackendV6Data) == 0 {
			t.Errorf("%s read as %s %+v, want %s with PublicIPv6 %s and BackendV6Data", n.Name, l.ID(), l.Attrs, want, n.UnderlayIP6)
		}
		if i == 1 {
			for _, k := range []string{"public-ip", "backend-data"} {
				if v, ok := node.Annotations[prefix+k]; ok {
					t.Errorf("flanneld wrote %s%s=%q on an IPv6-only node; overlayd leaves it out", prefix, k, v)
				}
			}
		}
		if err := c.Agent(n).Stop(os.Interrupt); err != nil {
			t.Logf("stop flanneld on %s: %v", n.Name, err)
		}
		checkTakeoverWritesNothing(t, c, ann, n, l, confs[i])
	}
}

// checkTakeoverWritesNothing: overlayd's kube manager on n, publishing
// the addresses and MACs flanneld published, patches no annotation.
func checkTakeoverWritesNothing(t *testing.T, c *kubeCluster, ann kubesubnet.Annotations, n *lab.Node, l subnet.Lease, conf string) {
	t.Helper()
	before := c.node(n.Name) // flanneld stopped: nothing else writes the Node
	cfg, err := subnet.ParseConfig([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := kubeapi.WriteKubeconfig(t.TempDir(), c.api.URL, c.api.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	client, _, err := kubesubnet.NewClient(kubesubnet.ClientOptions{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	opts := kubesubnet.Options{Client: client, NodeName: n.Name, Annotations: ann, Attrs: l.Attrs,
		RetryInterval: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if cfg.EnableIPv4 {
		opts.Network = cfg.Network
	}
	opts.IPv6Network = cfg.IPv6Network
	_, got := acquireLease(t, opts)
	after := c.node(n.Name)
	if after.ResourceVersion != before.ResourceVersion {
		var diff []string
		for k, v := range after.Annotations {
			if before.Annotations[k] != v {
				diff = append(diff, k+"="+v)
			}
		}
		t.Errorf("taking %s over from flanneld rewrote its annotations: %s", n.Name, strings.Join(diff, ", "))
	}
	if got.ID() != l.ID() {
		t.Errorf("overlayd's lease on %s: %s, want %s", n.Name, got.ID(), l.ID())
	}
}
