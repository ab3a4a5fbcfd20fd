package kube

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/kubeapi"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/subnet"
	kubesubnet "github.com/overlayd/overlayd/subnet/kube"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

// flanneldDualStackNode are the annotations flanneld v0.28 writes on a
// dual-stack node (docs/compatibility.md, "IPv6 and dual-stack").
func flanneldDualStackNode(mac, ip, mac6, ip6 string) map[string]string {
	a := flannelNode(mac, ip)
	a[prefix+"backend-v6-data"] = `{"VNI":1,"VtepMAC":"` + mac6 + `"}`
	a[prefix+"public-ipv6"] = ip6
	return a
}

// TestKubeDualStackLeases runs the kube subnet manager against a real
// kube-apiserver with a dual-stack Node set: our Node as flanneld v0.28
// left it (its IPv6 VTEP MAC is kept, nothing needs rewriting), a
// dual-stack flanneld peer, an IPv4-only agent on a dual-stack Node and a
// peer with public-ipv6-overwrite. Peers arrive with their IPv6Subnet.
func TestKubeDualStackLeases(t *testing.T) {
	apiServerBinary(t)
	etcd := etcdtest.StartT(t, etcdtest.Options{})
	api := startAPIServer(t, etcd.Endpoint())
	admin := api.adminClient(t)
	nodes := []struct {
		name  string
		cidrs []string
		ann   map[string]string
	}{
		{"node0", []string{"10.244.1.0/24", "2001:db8:0:1::/64"},
			flanneldDualStackNode("02:00:00:00:00:01", "192.0.2.1", "02:00:00:00:06:01", "2001:db8:ffff::1")},
		{"node1", []string{"10.244.2.0/24", "2001:db8:0:2::/64"},
			flanneldDualStackNode("02:00:00:00:00:02", "192.0.2.2", "02:00:00:00:06:02", "2001:db8:ffff::2")},
		{"node2", []string{"10.244.3.0/24", "2001:db8:0:3::/64"}, flannelNode("02:00:00:00:00:03", "192.0.2.3")},
		{"node3", []string{"2001:db8:0:4::/64", "10.244.4.0/24"}, func() map[string]string {
			a := flanneldDualStackNode("02:00:00:00:00:04", "192.0.2.4", "02:00:00:00:06:04", "2001:db8:ffff::4")
			a[prefix+"public-ipv6-overwrite"] = "2001:db8:eeee::4"
			return a
		}()},
	}
	for _, n := range nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name, Annotations: n.ann},
			Spec: corev1.NodeSpec{PodCIDR: n.cidrs[0], PodCIDRs: n.cidrs}}
		if _, err := admin.CoreV1().Nodes().Create(labtest.Context(t, 10*time.Second), node, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create node %s: %v", n.name, err)
		}
	}
	kubeconfig, err := kubeapi.WriteKubeconfig(t.TempDir(), api.URL, api.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	client, _, err := kubesubnet.NewClient(kubesubnet.ClientOptions{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	ann, err := kubesubnet.NewAnnotations(kubesubnet.DefaultAnnotationPrefix)
	if err != nil {
		t.Fatal(err)
	}
	opts := kubesubnet.Options{
		Client: client, NodeName: "node0", Annotations: ann,
		Network: netip.MustParsePrefix("10.244.0.0/16"), IPv6Network: netip.MustParsePrefix("2001:db8::/48"),
		RetryInterval: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	own, err := kubesubnet.WaitForNode(labtest.Context(t, 20*time.Second), opts)
	if err != nil {
		t.Fatal(err)
	}
	if own.IPv6PodCIDR != netip.MustParsePrefix("2001:db8:0:1::/64") || string(own.Previous.BackendV6Data) != `{"VNI":1,"VtepMAC":"02:00:00:00:06:01"}` {
		t.Fatalf("own node %+v: want the IPv6 podCIDR and flanneld's backend-v6-data", own)
	}
	rvBefore := getNodeRV(t, admin, "node0")
	opts.Attrs = subnet.LeaseAttrs{
		PublicIP: netip.MustParseAddr("192.0.2.1"), PublicIPv6: netip.MustParseAddr("2001:db8:ffff::1"), BackendType: "vxlan",
		BackendData:   []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}`),
		BackendV6Data: []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:06:01"}`),
	}
	m, lease := acquireLease(t, opts)
	if lease.ID() != (subnet.LeaseID{Subnet: netip.MustParsePrefix("10.244.1.0/24"), IPv6Subnet: netip.MustParsePrefix("2001:db8:0:1::/64")}) {
		t.Errorf("our lease %s", lease.ID())
	}
	if rv := getNodeRV(t, admin, "node0"); rv != rvBefore {
		t.Errorf("Acquire rewrote annotations flanneld v0.28 had left as we would write them (resourceVersion %s -> %s)", rvBefore, rv)
	}

	sink := subnettest.NewSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.RunWatch(ctx, sink) }()
	t.Cleanup(func() { cancel(); <-done })
	want := map[string]subnet.LeaseID{
		"192.0.2.2": {Subnet: netip.MustParsePrefix("10.244.2.0/24"), IPv6Subnet: netip.MustParsePrefix("2001:db8:0:2::/64")},
		"192.0.2.3": {Subnet: netip.MustParsePrefix("10.244.3.0/24")},
		"192.0.2.4": {Subnet: netip.MustParsePrefix("10.244.4.0/24"), IPv6Subnet: netip.MustParsePrefix("2001:db8:0:4::/64")},
	}
	ok := sink.WaitFor(20*time.Second, func(s *subnettest.Sink) bool {
		peers := s.Peers()
		if len(peers) != len(want) {
			return false
		}
		for id, l := range peers {
			if want[l.Attrs.PublicIP.String()] != id {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("peers %+v, want %v", sink.Peers(), want)
	}
	for _, l := range sink.Peers() {
		switch l.Attrs.PublicIP.String() {
		case "192.0.2.2":
			if l.Attrs.PublicIPv6 != netip.MustParseAddr("2001:db8:ffff::2") || string(l.Attrs.BackendV6Data) != `{"VNI":1,"VtepMAC":"02:00:00:00:06:02"}` {
				t.Errorf("node1 lease %+v", l.Attrs)
			}
		case "192.0.2.4":
			if l.Attrs.PublicIPv6 != netip.MustParseAddr("2001:db8:eeee::4") {
				t.Errorf("node3 PublicIPv6 %s, want its public-ipv6-overwrite", l.Attrs.PublicIPv6)
			}
		}
	}
}

func getNodeRV(t *testing.T, admin kubernetes.Interface, name string) string {
	t.Helper()
	n, err := admin.CoreV1().Nodes().Get(labtest.Context(t, 10*time.Second), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n.ResourceVersion
}

// acquireLease builds a kube lease manager with opts and acquires its
// lease (within 20s), failing the test on either error.
func acquireLease(t *testing.T, opts kubesubnet.Options) (*kubesubnet.Manager, subnet.Lease) {
	t.Helper()
	m, err := kubesubnet.NewManager(opts)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := m.Acquire(labtest.Context(t, 20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return m, lease
}
