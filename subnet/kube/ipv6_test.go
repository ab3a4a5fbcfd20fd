package kube

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/overlayd/overlayd/subnet"
)

var (
	testIPv6Network = netip.MustParsePrefix("2001:db8::/48")
	testV6Attrs     = subnet.LeaseAttrs{
		PublicIP: netip.MustParseAddr("192.0.2.10"), PublicIPv6: netip.MustParseAddr("2001:db8:ffff::10"),
		BackendType:   subnet.BackendVXLAN,
		BackendData:   []byte(`{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:01"}`),
		BackendV6Data: []byte(`{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:61"}`),
	}
)

// dualNode is a Node with spec.podCIDRs of both families (podCIDR = the
// first, as the API server sets it).
func dualNode(name string, cidrs []string, ann map[string]string) *corev1.Node {
	n := node(name, "", ann)
	n.Spec.PodCIDRs = cidrs
	if len(cidrs) > 0 {
		n.Spec.PodCIDR = cidrs[0]
	}
	return n
}

// v6PeerAnnotations are what flanneld v0.28 writes on a dual-stack
// (ip != "") or IPv6-only node.
func v6PeerAnnotations(ip, ip6, mac, mac6 string) map[string]string {
	a := map[string]string{
		testAnn.SubnetKubeManaged: "true",
		testAnn.BackendType:       "vxlan",
		testAnn.BackendV6Data:     `{"VNI":1,"VtepMAC":"` + mac6 + `"}`,
		testAnn.PublicIPv6:        ip6,
	}
	if ip != "" {
		a[testAnn.BackendData] = `{"VNI":1,"VtepMAC":"` + mac + `"}`
		a[testAnn.PublicIP] = ip
	}
	return a
}

func TestNodeLeaseIPv6(t *testing.T) {
	tests := []struct {
		name       string
		cidrs      []string
		ann        map[string]string
		want4      string
		want6      string
		wantPublic string // PublicIPv6
		wantErr    string
	}{
		{name: "dual-stack flanneld node", cidrs: []string{"10.244.1.0/24", "2001:db8:0:1::/64"},
			ann:   v6PeerAnnotations("192.0.2.11", "2001:db8:ffff::11", "02:00:00:00:00:11", "02:00:00:00:06:11"),
			want4: "10.244.1.0/24", want6: "2001:db8:0:1::/64", wantPublic: "2001:db8:ffff::11"},
		{name: "IPv6 first in podCIDRs", cidrs: []string{"2001:db8:0:1::/64", "10.244.1.0/24"},
			ann:   v6PeerAnnotations("192.0.2.11", "2001:db8:ffff::11", "02:00:00:00:00:11", "02:00:00:00:06:11"),
			want4: "10.244.1.0/24", want6: "2001:db8:0:1::/64", wantPublic: "2001:db8:ffff::11"},
		{name: "IPv6-only node", cidrs: []string{"2001:db8:0:2::/64"},
			ann:   v6PeerAnnotations("", "2001:db8:ffff::12", "", "02:00:00:00:06:12"),
			want6: "2001:db8:0:2::/64", wantPublic: "2001:db8:ffff::12"},
		{name: "public-ipv6-overwrite wins", cidrs: []string{"10.244.1.0/24", "2001:db8:0:1::/64"},
			ann: func() map[string]string {
				a := v6PeerAnnotations("192.0.2.11", "2001:db8:ffff::11", "02:00:00:00:00:11", "02:00:00:00:06:11")
				a[testAnn.PublicIPv6Overwrite] = "2001:db8:eeee::11"
				return a
			}(), want4: "10.244.1.0/24", want6: "2001:db8:0:1::/64", wantPublic: "2001:db8:eeee::11"},
		{name: "dual-stack podCIDRs, IPv4-only agent: no IPv6Subnet", cidrs: []string{"10.244.1.0/24", "2001:db8:0:1::/64"},
			ann: peerAnnotations("192.0.2.11", "02:00:00:00:00:11"), want4: "10.244.1.0/24"},
		{name: "IPv6 podCIDR without public-ipv6", cidrs: []string{"2001:db8:0:2::/64"},
			ann: peerAnnotations("192.0.2.11", "02:00:00:00:00:11"), wantErr: "has no IPv4 podCIDR"},
		{name: "bad backend-v6-data", cidrs: []string{"2001:db8:0:2::/64"},
			ann: func() map[string]string {
				a := v6PeerAnnotations("", "2001:db8:ffff::12", "", "x")
				a[testAnn.BackendV6Data] = "{"
				return a
			}(), wantErr: "backend-v6-data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := testAnn.NodeLease(dualNode("n1", tt.cidrs, tt.ann))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NodeLease = %+v, %v; want an error with %q", l, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := prefixText(l.Subnet); got != tt.want4 {
				t.Errorf("Subnet %s, want %q", got, tt.want4)
			}
			if got := prefixText(l.IPv6Subnet); got != tt.want6 {
				t.Errorf("IPv6Subnet %s, want %q", got, tt.want6)
			}
			if tt.wantPublic != "" && l.Attrs.PublicIPv6 != netip.MustParseAddr(tt.wantPublic) {
				t.Errorf("PublicIPv6 %s, want %s", l.Attrs.PublicIPv6, tt.wantPublic)
			}
		})
	}
}

func prefixText(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

func v6Options(t *testing.T, cs *fake.Clientset, ipv4 bool) Options {
	o := testOptions(t, cs)
	o.IPv6Network, o.Attrs = testIPv6Network, testV6Attrs
	if !ipv4 {
		o.Network = netip.Prefix{}
		o.Attrs.PublicIP, o.Attrs.BackendData = netip.Addr{}, nil
	}
	return o
}

// TestAcquireDualStack: our lease is the Node's two podCIDRs, and the
// annotations are flanneld v0.28's, with the configured prefix; the
// public-ipv6-overwrite is published as flanneld does.
func TestAcquireDualStack(t *testing.T) {
	ann := map[string]string{testAnn.PublicIPv6Overwrite: "2001:db8:eeee::10"}
	cs := fake.NewClientset(dualNode("node0", []string{"10.244.3.0/24", "2001:db8:0:3::/64"}, ann))
	m := mustNewManager(t, v6Options(t, cs, true))
	lease := mustAcquire(t, m)
	if lease.ID() != (subnet.LeaseID{Subnet: netip.MustParsePrefix("10.244.3.0/24"), IPv6Subnet: netip.MustParsePrefix("2001:db8:0:3::/64")}) {
		t.Errorf("lease %s", lease.ID())
	}
	wantAnnotations(t, getNode(t, cs, "node0").Annotations, map[string]string{
		"flannel.alpha.coreos.com/public-ipv6-overwrite": "2001:db8:eeee::10",
		"flannel.alpha.coreos.com/kube-subnet-manager":   "true",
		"flannel.alpha.coreos.com/backend-type":          "vxlan",
		"flannel.alpha.coreos.com/backend-data":          `{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:01"}`,
		"flannel.alpha.coreos.com/public-ip":             "192.0.2.10",
		"flannel.alpha.coreos.com/backend-v6-data":       `{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:61"}`,
		"flannel.alpha.coreos.com/public-ipv6":           "2001:db8:eeee::10",
	})
	if lease.Attrs.PublicIPv6 != netip.MustParseAddr("2001:db8:eeee::10") {
		t.Errorf("lease PublicIPv6 %s, want the overwrite", lease.Attrs.PublicIPv6)
	}
}

// TestAcquireIPv6Only: no IPv4 network, an IPv6 podCIDR: the lease has
// only an IPv6Subnet and, as flanneld, neither public-ip nor backend-data
// is written.
func TestAcquireIPv6Only(t *testing.T) {
	cs := fake.NewClientset(dualNode("node0", []string{"2001:db8:0:3::/64"}, nil))
	m := mustNewManager(t, v6Options(t, cs, false))
	lease := mustAcquire(t, m)
	if lease.Subnet.IsValid() || lease.IPv6Subnet != netip.MustParsePrefix("2001:db8:0:3::/64") {
		t.Errorf("lease %s", lease.ID())
	}
	got := getNode(t, cs, "node0").Annotations
	for _, k := range []string{testAnn.PublicIP, testAnn.BackendData} {
		if v, ok := got[k]; ok {
			t.Errorf("annotation %s = %q on an IPv6-only node", k, v)
		}
	}
	if got[testAnn.PublicIPv6] != "2001:db8:ffff::10" || got[testAnn.BackendV6Data] != `{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:61"}` {
		t.Errorf("annotations %v", got)
	}
}

func TestOwnNodeIPv6Errors(t *testing.T) {
	tests := []struct {
		name  string
		cidrs []string
		want  string
	}{
		{"IPv4 podCIDR only", []string{"10.244.3.0/24"}, "has only IPv4 podCIDRs [10.244.3.0/24]: the network config enables IPv6"},
		{"IPv6 podCIDR outside IPv6Network", []string{"10.244.3.0/24", "2001:db9:0:3::/64"}, "podCIDR 2001:db9:0:3::/64 is outside the network config's IPv6Network 2001:db8::/48"},
	}
	for _, tt := range tests {
		cs := fake.NewClientset(dualNode("node0", tt.cidrs, nil))
		o := v6Options(t, cs, true)
		_, err := o.checkOwnNode(dualNode("node0", tt.cidrs, nil))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestOwnNodeIPv6Annotations: node-public-ipv6 (flanneld's stand-in for
// --public-ipv6) and public-ipv6-overwrite are read from our Node; a value
// that is not an IPv6 address is ignored.
func TestOwnNodeIPv6Annotations(t *testing.T) {
	ann := map[string]string{testAnn.NodePublicIPv6: "2001:db8:dddd::10", testAnn.PublicIPv6Overwrite: "192.0.2.99"}
	n := dualNode("node0", []string{"10.244.3.0/24", "2001:db8:0:3::/64"}, ann)
	o := v6Options(t, fake.NewClientset(n), true)
	own, err := o.checkOwnNode(n)
	if err != nil {
		t.Fatal(err)
	}
	if own.NodePublicIPv6 != netip.MustParseAddr("2001:db8:dddd::10") || own.PublicIPv6Overwrite.IsValid() {
		t.Errorf("own node %+v", own)
	}
	if testAnn.NodePublicIPv6 != "flannel.alpha.coreos.com/node-public-ipv6" {
		t.Errorf("key %q", testAnn.NodePublicIPv6)
	}
}
