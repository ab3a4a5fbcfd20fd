package kube

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overlayd/overlayd/internal/errtest"
	"github.com/overlayd/overlayd/subnet"
)

func TestNewAnnotations(t *testing.T) {
	tests := []struct {
		prefix, wantKey, wantErr string
	}{
		{prefix: "flannel.alpha.coreos.com", wantKey: "flannel.alpha.coreos.com/backend-data"},
		{prefix: "example.com/", wantKey: "example.com/backend-data"},
		{prefix: "example.com/x", wantKey: "example.com/x-backend-data"}, // as flanneld forms it
		{prefix: "example.com/x-", wantKey: "example.com/x-backend-data"},
		{prefix: "a.b/c/d", wantErr: "more than one slash"},
		{prefix: "", wantErr: "empty"},
		{prefix: "Not A Domain", wantErr: `"Not A Domain"`},
	}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			a, err := NewAnnotations(tc.prefix)
			if !errtest.Check(t, err, tc.wantErr) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.BackendData != tc.wantKey {
				t.Errorf("BackendData key %q, want %q", a.BackendData, tc.wantKey)
			}
		})
	}
	a := mustAnnotations(DefaultAnnotationPrefix)
	got := []string{a.SubnetKubeManaged, a.BackendType, a.BackendData, a.PublicIP, a.PublicIPOverwrite,
		a.BackendV6Data, a.PublicIPv6, a.PublicIPv6Overwrite}
	want := []string{"kube-subnet-manager", "backend-type", "backend-data", "public-ip", "public-ip-overwrite",
		"backend-v6-data", "public-ipv6", "public-ipv6-overwrite"}
	for i := range want {
		if got[i] != "flannel.alpha.coreos.com/"+want[i] {
			t.Errorf("key %q, want flannel.alpha.coreos.com/%s (docs/compatibility.md, \"Kubernetes mode\")", got[i], want[i])
		}
	}
}

func TestNodeLease(t *testing.T) {
	with := func(extra map[string]string) map[string]string {
		a := peerAnnotations("192.0.2.11", "02:00:00:00:00:11")
		for k, v := range extra {
			if v == "" {
				delete(a, k)
			} else {
				a[k] = v
			}
		}
		return a
	}
	tests := []struct {
		name       string
		podCIDRs   []string
		ann        map[string]string
		wantSubnet string
		wantPublic string
		wantErr    string // "" ok, "unmanaged" errNotManaged, else a substring
	}{
		{name: "flannel node", podCIDRs: []string{"10.244.1.0/24"}, ann: with(nil), wantSubnet: "10.244.1.0/24", wantPublic: "192.0.2.11"},
		{name: "overwrite wins", podCIDRs: []string{"10.244.1.0/24"}, ann: with(map[string]string{testAnn.PublicIPOverwrite: "203.0.113.5"}),
			wantSubnet: "10.244.1.0/24", wantPublic: "203.0.113.5"},
		{name: "bad overwrite falls back", podCIDRs: []string{"10.244.1.0/24"}, ann: with(map[string]string{testAnn.PublicIPOverwrite: "nope"}),
			wantSubnet: "10.244.1.0/24", wantPublic: "192.0.2.11"},
		{name: "dual-stack takes IPv4", podCIDRs: []string{"fd00:1::/64", "10.244.2.0/24"}, ann: with(nil),
			wantSubnet: "10.244.2.0/24", wantPublic: "192.0.2.11"},
		{name: "not managed", podCIDRs: []string{"10.244.1.0/24"}, ann: with(map[string]string{testAnn.SubnetKubeManaged: ""}), wantErr: "unmanaged"},
		{name: "managed false", podCIDRs: []string{"10.244.1.0/24"}, ann: with(map[string]string{testAnn.SubnetKubeManaged: "false"}), wantErr: "unmanaged"},
		{name: "no podCIDR", ann: with(nil), wantErr: "no IPv4 podCIDR"},
		{name: "IPv6 only", podCIDRs: []string{"fd00:1::/64"}, ann: with(nil), wantErr: "no IPv4 podCIDR"},
		{name: "bad podCIDR", podCIDRs: []string{"10.244.1.0"}, ann: with(nil), wantErr: "not a CIDR"},
		{name: "bad public-ip", podCIDRs: []string{"10.244.1.0/24"}, ann: with(map[string]string{testAnn.PublicIP: "x"}), wantErr: "public-ip"},
		{name: "no public-ip", podCIDRs: []string{"10.244.1.0/24"}, ann: with(map[string]string{testAnn.PublicIP: ""}), wantErr: "public-ip"},
		{name: "bad backend-data", podCIDRs: []string{"10.244.1.0/24"}, ann: with(map[string]string{testAnn.BackendData: "{"}), wantErr: "backend-data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := node("peer", "", tc.ann)
			n.Spec.PodCIDRs = tc.podCIDRs
			l, err := testAnn.NodeLease(n)
			switch {
			case tc.wantErr == "unmanaged":
				if !errors.Is(err, errNotManaged) {
					t.Fatalf("error %v, want errNotManaged", err)
				}
				return
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), `"peer"`) {
					t.Fatalf("error %v, want one naming the node and %q", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if l.Subnet.String() != tc.wantSubnet || l.Attrs.PublicIP.String() != tc.wantPublic {
				t.Errorf("lease %s public %s, want %s public %s", l.Subnet, l.Attrs.PublicIP, tc.wantSubnet, tc.wantPublic)
			}
			if l.Attrs.BackendType != "vxlan" || string(l.Attrs.BackendData) != `{"VNI":1,"VtepMAC":"02:00:00:00:00:11"}` || !l.IsReservation() {
				t.Errorf("lease attrs %+v, want the annotations' backend type and data, no expiration", l.Attrs)
			}
		})
	}
}

func TestCheckOwnNode(t *testing.T) {
	o := testOptions(t, nil)
	tests := []struct {
		name     string
		podCIDRs []string
		wantErr  string
	}{
		{name: "inside", podCIDRs: []string{"10.244.7.0/24"}},
		{name: "no podCIDR", wantErr: "has no podCIDR: was kube-controller-manager started with --allocate-node-cidrs and --cluster-cidr"},
		{name: "outside", podCIDRs: []string{"10.32.0.0/24"}, wantErr: "outside the network config's Network 10.244.0.0/16"},
		{name: "wider than network", podCIDRs: []string{"10.0.0.0/8"}, wantErr: "outside"},
		{name: "IPv6 only", podCIDRs: []string{"fd00::/64"}, wantErr: "only IPv6 podCIDRs [fd00::/64]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := node("node0", "", map[string]string{testAnn.PublicIPOverwrite: "203.0.113.1"})
			n.Spec.PodCIDRs = tc.podCIDRs
			own, err := o.checkOwnNode(n)
			if !errtest.Check(t, err, tc.wantErr) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if own.PodCIDR.String() != tc.podCIDRs[0] || own.PublicIPOverwrite != netip.MustParseAddr("203.0.113.1") {
				t.Errorf("own %+v", own)
			}
		})
	}
}

func TestAnnotationChanges(t *testing.T) {
	attrs := testAttrs
	attrs.PrivateIP = netip.MustParseAddr("198.51.100.2")
	want := testAnn.annotationsFor(attrs)
	full := map[string]string{
		testAnn.SubnetKubeManaged: "true", testAnn.BackendType: "vxlan",
		testAnn.BackendData: `{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:01"}`, testAnn.PublicIP: "192.0.2.10",
		testAnn.PrivateIP: "198.51.100.2",
	}
	if c := annotationChanges(full, want); len(c) != 0 {
		t.Errorf("in-sync annotations give changes %v", c)
	}
	stale := map[string]string{testAnn.PublicIP: "192.0.2.99", "unrelated": "x"}
	c := annotationChanges(stale, want)
	if len(c) != 5 || c[testAnn.PublicIP] != "192.0.2.10" {
		t.Errorf("changes %v, want all five of ours with public-ip 192.0.2.10", c)
	}
	// Without a private address, a stale one is removed (JSON null).
	c = annotationChanges(full, testAnn.annotationsFor(testAttrs))
	if v, ok := c[testAnn.PrivateIP]; len(c) != 1 || !ok || v != nil {
		t.Errorf("changes %v, want only %s: nil", c, testAnn.PrivateIP)
	}
}

func TestNodeLeaseRoundTripsAnnotationsFor(t *testing.T) {
	attrs := testAttrs
	attrs.PrivateIP = netip.MustParseAddr("198.51.100.2")
	attrs.SameSiteKey = bytes.Repeat([]byte{0xab}, subnet.SameSiteKeyLen)
	ann := map[string]string{}
	for k, v := range testAnn.annotationsFor(attrs) {
		if v != nil {
			ann[k] = *v
		}
	}
	l, err := testAnn.NodeLease(node("n", "10.244.5.0/24", ann))
	if err != nil {
		t.Fatal(err)
	}
	if !subnet.AttrsEqual(l.Attrs, attrs) {
		t.Errorf("read back %+v, wrote %+v", l.Attrs, attrs)
	}
	if got := ann[testAnn.SameSiteKey]; got != "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=" {
		t.Errorf("same-site key annotation %q", got)
	}
	ann[testAnn.SameSiteKey] = "not base64"
	if l, err := testAnn.NodeLease(node("n", "10.244.5.0/24", ann)); err != nil || l.Attrs.SameSiteKey != nil {
		t.Errorf("a bad key annotation: %v, key %x; want the lease without a key", err, l.Attrs.SameSiteKey)
	}
}

// TestNodeLeaseCreatedIsTheNodesAge: Lease.Created orders peers by the
// Node's creationTimestamp (the peer set resolves overlaps by it).
func TestNodeLeaseCreatedIsTheNodesAge(t *testing.T) {
	older := node("a", "10.244.5.0/24", peerAnnotations("192.0.2.5", "02:00:00:00:00:05"))
	older.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	newer := node("b", "10.244.6.0/24", peerAnnotations("192.0.2.6", "02:00:00:00:00:06"))
	newer.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC))
	a, errA := testAnn.NodeLease(older)
	b, errB := testAnn.NodeLease(newer)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a.Created != older.CreationTimestamp.UnixNano() || b.Created <= a.Created {
		t.Fatalf("Created %d and %d, want the Nodes' creation times in order", a.Created, b.Created)
	}
	unknown, err := testAnn.NodeLease(node("c", "10.244.7.0/24", peerAnnotations("192.0.2.7", "02:00:00:00:00:07")))
	if err != nil || unknown.Created != 0 {
		t.Fatalf("no creationTimestamp: Created %d (%v), want 0", unknown.Created, err)
	}
}
