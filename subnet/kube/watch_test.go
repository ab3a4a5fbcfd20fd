package kube

import (
	"context"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

// startWatch runs RunWatch on a manager whose lease is node0's.
func startWatch(t *testing.T, cs *fake.Clientset) (*Manager, *subnettest.Sink) {
	t.Helper()
	m := newTestManager(t, cs)
	ctx := testContext(t, 20*time.Second)
	if _, err := m.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	sink := subnettest.NewSink()
	done := make(chan error, 1)
	go func() { done <- m.RunWatch(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunWatch returned %v after cancel, want nil", err)
		}
	})
	if !sink.WaitFor(5*time.Second, func(s *subnettest.Sink) bool { return s.Replaces() == 1 }) {
		t.Fatal("no ReplacePeers after the informer synced")
	}
	return m, sink
}

func waitPeers(t *testing.T, sink *subnettest.Sink, what string, want map[string]string) {
	t.Helper()
	ok := sink.WaitFor(5*time.Second, func(s *subnettest.Sink) bool { return peersAre(s.Peers(), want) })
	if !ok {
		t.Fatalf("%s: peers %v, want subnet→public ip %v", what, sink.Peers(), want)
	}
}

func peersAre(got map[netip.Prefix]subnet.Lease, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for s, ip := range want {
		l, ok := got[netip.MustParsePrefix(s)]
		if !ok || l.Attrs.PublicIP.String() != ip {
			return false
		}
	}
	return true
}

func TestRunWatchDeliversManagedNodesOnly(t *testing.T) {
	bad := peerAnnotations("not-an-ip", "02:00:00:00:00:04")
	cs := fake.NewClientset(
		node("node0", "10.244.0.0/24", nil),
		node("node1", "10.244.1.0/24", peerAnnotations("192.0.2.11", "02:00:00:00:00:01")),
		node("node2", "10.244.2.0/24", nil),                                   // no agent
		node("node3", "", peerAnnotations("192.0.2.13", "02:00:00:00:00:03")), // no podCIDR
		node("node4", "10.244.4.0/24", bad),
		node("node5", "10.244.5.0/24", peerAnnotations("192.0.2.15", "02:00:00:00:00:05")),
	)
	_, sink := startWatch(t, cs)
	waitPeers(t, sink, "snapshot", map[string]string{"10.244.1.0/24": "192.0.2.11", "10.244.5.0/24": "192.0.2.15"})
	if len(sink.Updates()) != 0 {
		t.Errorf("updates before any change: %v", sink.Updates())
	}
}

func TestRunWatchFollowsChanges(t *testing.T) {
	cs := fake.NewClientset(
		node("node0", "10.244.0.0/24", nil),
		node("node1", "10.244.1.0/24", peerAnnotations("192.0.2.11", "02:00:00:00:00:01")),
	)
	_, sink := startWatch(t, cs)
	ctx := testContext(t, 10*time.Second)
	nodes := cs.CoreV1().Nodes()
	update := func(name string, change func(ann map[string]string)) {
		t.Helper()
		n := getNode(t, cs, name)
		if n.Annotations == nil {
			n.Annotations = map[string]string{}
		}
		change(n.Annotations)
		if _, err := nodes.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// A new node's agent publishes its lease.
	if _, err := nodes.Create(ctx, node("node2", "10.244.2.0/24", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	update("node2", func(a map[string]string) {
		for k, v := range peerAnnotations("192.0.2.12", "02:00:00:00:00:02") {
			a[k] = v
		}
	})
	waitPeers(t, sink, "node2 added", map[string]string{"10.244.1.0/24": "192.0.2.11", "10.244.2.0/24": "192.0.2.12"})

	// The user sets node1's overwrite: peers follow.
	update("node1", func(a map[string]string) { a[testAnn.PublicIPOverwrite] = "203.0.113.11" })
	waitPeers(t, sink, "node1 overwrite", map[string]string{"10.244.1.0/24": "203.0.113.11", "10.244.2.0/24": "192.0.2.12"})

	// node2's backend-data turns to garbage: its last good lease stays.
	before := len(sink.Events())
	update("node2", func(a map[string]string) { a[testAnn.BackendData] = "{garbage" })
	time.Sleep(100 * time.Millisecond)
	waitPeers(t, sink, "garbage kept", map[string]string{"10.244.1.0/24": "203.0.113.11", "10.244.2.0/24": "192.0.2.12"})
	if n := len(sink.Events()); n != before {
		t.Errorf("a garbage annotation produced events: %v", sink.Events()[before:])
	}

	// node1 is deleted: removed, with its last attributes.
	if err := nodes.Delete(ctx, "node1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, sink, "node1 deleted", map[string]string{"10.244.2.0/24": "192.0.2.12"})
	evs := sink.Events()
	last := evs[len(evs)-1]
	if last.Type != subnet.EventRemoved || last.Lease.Attrs.PublicIP.String() != "203.0.113.11" || len(last.Lease.Attrs.BackendData) == 0 {
		t.Errorf("removal event %+v, want node1's last lease", last)
	}

	// node2 stops being managed (another CNI took over): removed.
	update("node2", func(a map[string]string) { delete(a, testAnn.SubnetKubeManaged) })
	waitPeers(t, sink, "node2 unmanaged", map[string]string{})
}

func TestRunWatchSkipsOwnNodeAndOverlaps(t *testing.T) {
	cs := fake.NewClientset(
		node("node0", "10.244.0.0/24", nil),
		node("node9", "10.244.0.0/24", peerAnnotations("192.0.2.19", "02:00:00:00:00:09")), // claims our subnet
		node("node1", "10.244.1.0/24", peerAnnotations("192.0.2.11", "02:00:00:00:00:01")),
	)
	m, sink := startWatch(t, cs)
	waitPeers(t, sink, "snapshot", map[string]string{"10.244.1.0/24": "192.0.2.11"})
	// Our own node changing wakes renewal, and is no peer.
	n := getNode(t, cs, "node0")
	n.Annotations["x"] = "y"
	if _, err := cs.CoreV1().Nodes().Update(testContext(t, time.Second), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.ownChanged:
	case <-time.After(5 * time.Second):
		t.Error("a change to our node did not wake renewal")
	}
	if len(sink.Updates()) != 0 {
		t.Errorf("updates %v, want none", sink.Updates())
	}
}

func TestSlimNodeKeepsWhatTheWatchReads(t *testing.T) {
	full := node("node1", "10.244.1.0/24", peerAnnotations("192.0.2.11", "02:00:00:00:00:01"))
	full.ResourceVersion, full.UID = "42", "uid-1"
	full.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
	full.Labels = map[string]string{"kubernetes.io/hostname": "node1"}
	full.Status.Images = []corev1.ContainerImage{{Names: []string{"registry.example/big:1"}, SizeBytes: 1 << 30}}
	full.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	obj, err := slimNode(full)
	if err != nil {
		t.Fatal(err)
	}
	slim := obj.(*corev1.Node)
	if slim.Name != "node1" || slim.ResourceVersion != "42" || slim.UID != "uid-1" || slim.Spec.PodCIDR != "10.244.1.0/24" || len(slim.Spec.PodCIDRs) != 1 {
		t.Errorf("slim node lost identity or podCIDRs: %+v", slim)
	}
	if len(slim.ManagedFields) != 0 || len(slim.Labels) != 0 || len(slim.Status.Images) != 0 || len(slim.Status.Conditions) != 0 {
		t.Errorf("slim node kept what the watch does not read: %+v", slim)
	}
	want, err := testAnn.NodeLease(full)
	if err != nil {
		t.Fatal(err)
	}
	got, err := testAnn.NodeLease(slim)
	if err != nil || got.Subnet != want.Subnet || !subnet.AttrsEqual(got.Attrs, want.Attrs) {
		t.Errorf("slim node's lease %+v, %v; want the full node's %+v", got, err, want)
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "node1", Obj: slim}
	if obj, _ := slimNode(tomb); obj != any(tomb) {
		t.Errorf("a tombstone was changed: %+v", obj)
	}
}
