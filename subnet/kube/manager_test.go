package kube

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/overlayd/overlayd/subnet"
)

// statusPatches returns the patches of nodes/status the client received.
func statusPatches(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok && a.GetResource().Resource == "nodes" {
			if a.GetSubresource() != "status" {
				out = append(out, "NOT STATUS: "+string(p.GetPatch()))
				continue
			}
			out = append(out, string(p.GetPatch()))
		}
	}
	return out
}

func TestAcquirePublishesAnnotationsThroughStatus(t *testing.T) {
	cs := fake.NewClientset(node("node0", "10.244.3.0/24", map[string]string{"other": "kept"}))
	m := newTestManager(t, cs)
	lease := mustAcquire(t, m)
	if lease.Subnet != netip.MustParsePrefix("10.244.3.0/24") || !subnet.AttrsEqual(lease.Attrs, testAttrs) {
		t.Errorf("lease %+v, want 10.244.3.0/24 with %+v", lease, testAttrs)
	}
	if m.Lease().Subnet != lease.Subnet {
		t.Errorf("Lease() %v after Acquire, want %v", m.Lease().Subnet, lease.Subnet)
	}
	wantAnnotations(t, getNode(t, cs, "node0").Annotations, map[string]string{
		"other": "kept",
		"flannel.alpha.coreos.com/kube-subnet-manager": "true",
		"flannel.alpha.coreos.com/backend-type":        "vxlan",
		"flannel.alpha.coreos.com/backend-data":        `{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:01"}`,
		"flannel.alpha.coreos.com/public-ip":           "192.0.2.10",
	})
	patches := statusPatches(cs)
	if len(patches) != 1 {
		t.Fatalf("patches %q, want one of nodes/status", patches)
	}
	// A second Acquire (a restart) finds everything in place: no write.
	m2, _ := NewManager(testOptions(t, cs))
	if _, err := m2.Acquire(testContext(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := len(statusPatches(cs)); n != 1 {
		t.Errorf("a restart with unchanged annotations patched again: %q", statusPatches(cs))
	}
}

func TestAcquireHonoursPublicIPOverwrite(t *testing.T) {
	ann := map[string]string{testAnn.PublicIPOverwrite: "203.0.113.7"}
	cs := fake.NewClientset(node("node0", "10.244.3.0/24", ann))
	m := newTestManager(t, cs)
	lease := mustAcquire(t, m)
	if want := netip.MustParseAddr("203.0.113.7"); lease.Attrs.PublicIP != want {
		t.Errorf("lease PublicIP %s, want the overwrite %s", lease.Attrs.PublicIP, want)
	}
	if got := getNode(t, cs, "node0").Annotations[testAnn.PublicIP]; got != "203.0.113.7" {
		t.Errorf("public-ip annotation %q, want the overwrite 203.0.113.7", got)
	}
}

func TestAcquireWaitsForPodCIDR(t *testing.T) {
	cs := fake.NewClientset(node("node0", "", nil))
	m := newTestManager(t, cs)
	done := make(chan error, 1)
	go func() { _, err := m.Acquire(testContext(t, 5*time.Second)); done <- err }()
	time.Sleep(50 * time.Millisecond) // a few retries
	select {
	case err := <-done:
		t.Fatalf("Acquire returned %v before the node had a podCIDR", err)
	default:
	}
	n := getNode(t, cs, "node0")
	n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.9.0/24", []string{"10.244.9.0/24"}
	if _, err := cs.CoreV1().Nodes().Update(testContext(t, time.Second), n, metaUpdate); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := m.Lease().Subnet.String(); got != "10.244.9.0/24" {
		t.Errorf("lease %s, want 10.244.9.0/24", got)
	}
}

func TestAcquireStopsWithContext(t *testing.T) {
	cs := fake.NewClientset() // no node at all
	m := newTestManager(t, cs)
	_, err := m.Acquire(testContext(t, 100*time.Millisecond))
	if err == nil {
		t.Fatal("Acquire without a node succeeded")
	}
}

func TestNewManagerRejectsBadOptions(t *testing.T) {
	cs := fake.NewClientset()
	tests := []struct {
		name   string
		modify func(*Options)
	}{
		{"no client", func(o *Options) { o.Client = nil }},
		{"no node name", func(o *Options) { o.NodeName = "" }},
		{"no annotations", func(o *Options) { o.Annotations = Annotations{} }},
		{"no network", func(o *Options) { o.Network = netip.Prefix{} }},
		{"IPv6 public ip", func(o *Options) { o.Attrs.PublicIP = netip.MustParseAddr("2001:db8::1") }},
		{"no backend type", func(o *Options) { o.Attrs.BackendType = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(t, cs)
			tc.modify(&o)
			if _, err := NewManager(o); err == nil {
				t.Error("NewManager accepted it")
			}
		})
	}
}

func TestRunRenewalSetsConditionAndRepairsAnnotations(t *testing.T) {
	cs := fake.NewClientset(node("node0", "10.244.3.0/24", nil))
	m := newTestManager(t, cs)
	ctx := testContext(t, 10*time.Second)
	if _, err := m.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.RunRenewal(ctx) }()
	eventually(t, "NetworkUnavailable=False", func() bool { return conditionInPlace(getNode(t, cs, "node0")) })
	c := networkCondition(getNode(t, cs, "node0"))
	if c.Reason != "FlannelIsUp" || c.Status != corev1.ConditionFalse || c.LastTransitionTime.IsZero() {
		t.Errorf("condition %+v, want status False, reason FlannelIsUp and a transition time", c)
	}

	// Someone strips our annotations: they come back.
	n := getNode(t, cs, "node0")
	delete(n.Annotations, testAnn.BackendData)
	delete(n.Annotations, testAnn.SubnetKubeManaged)
	if _, err := cs.CoreV1().Nodes().Update(ctx, n, metaUpdate); err != nil {
		t.Fatal(err)
	}
	eventually(t, "annotations restored", func() bool {
		a := getNode(t, cs, "node0").Annotations
		return a[testAnn.BackendData] != "" && a[testAnn.SubnetKubeManaged] == "true"
	})

	// A new overwrite is published and becomes our PublicIP.
	n = getNode(t, cs, "node0")
	n.Annotations[testAnn.PublicIPOverwrite] = "203.0.113.9"
	if _, err := cs.CoreV1().Nodes().Update(ctx, n, metaUpdate); err != nil {
		t.Fatal(err)
	}
	eventually(t, "overwrite published", func() bool {
		return getNode(t, cs, "node0").Annotations[testAnn.PublicIP] == "203.0.113.9" &&
			m.Lease().Attrs.PublicIP == netip.MustParseAddr("203.0.113.9")
	})

	// The node comes back with another podCIDR: the lease is lost.
	n = getNode(t, cs, "node0")
	n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.4.0/24", []string{"10.244.4.0/24"}
	if _, err := cs.CoreV1().Nodes().Update(ctx, n, metaUpdate); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, subnet.ErrOwnLeaseLost) {
			t.Errorf("RunRenewal returned %v, want ErrOwnLeaseLost", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunRenewal kept going after the podCIDR changed")
	}
}

func TestRunRenewalNeedsALease(t *testing.T) {
	m := mustNewManager(t, testOptions(t, fake.NewClientset()))
	if err := m.RunRenewal(testContext(t, time.Second)); err == nil {
		t.Error("RunRenewal before Acquire returned nil")
	}
}

func networkCondition(n *corev1.Node) corev1.NodeCondition {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			return c
		}
	}
	return corev1.NodeCondition{}
}

// --set-node-network-unavailable=false: the annotations are kept up, the
// condition is left alone.
func TestRunRenewalLeavesConditionWhenAsked(t *testing.T) {
	cs := fake.NewClientset(node("node0", "10.244.3.0/24", nil))
	o := testOptions(t, cs)
	o.LeaveNetworkUnavailable = true
	m := mustNewManager(t, o)
	ctx := testContext(t, 10*time.Second)
	if _, err := m.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.recheck(ctx); err != nil {
		t.Fatal(err)
	}
	n := getNode(t, cs, "node0")
	if n.Annotations[testAnn.BackendData] == "" {
		t.Fatal("annotations not written")
	}
	if c := networkCondition(n); c.Type != "" {
		t.Errorf("condition %+v set, want none", c)
	}
}
