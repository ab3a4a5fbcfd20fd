package kube

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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

func peersAre(got map[subnet.LeaseID]subnet.Lease, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for s, ip := range want {
		l, ok := got[subnet.LeaseID{Subnet: netip.MustParsePrefix(s)}]
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
	full.Annotations["node.alpha.kubernetes.io/ttl"] = "0"
	full.Status.Images = []corev1.ContainerImage{{Names: []string{"registry.example/big:1"}, SizeBytes: 1 << 30}}
	full.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	want, err := testAnn.NodeLease(full)
	if err != nil {
		t.Fatal(err)
	}
	// The entry a streamed list keeps: the name and the lease.
	e := testAnn.entryOf(full)
	if e.name != "node1" || e.resourceVersion != "42" || e.err != nil || e.lease.Subnet != want.Subnet || !subnet.AttrsEqual(e.lease.Attrs, want.Attrs) {
		t.Errorf("entry %+v; want node1's lease %+v", e, want)
	}
	if key, err := cache.MetaNamespaceKeyFunc(e); err != nil || key != "node1" {
		t.Errorf("store key of the entry: %q, %v; want node1", key, err)
	}
	// A listed node becomes the same entry.
	cs := fake.NewClientset(full, node("node2", "10.244.2.0/24", nil))
	list, err := listEntries(testContext(t, 5*time.Second), fakeAPI{cs}, metav1.ListOptions{ResourceVersion: "0"}, testAnn, nil)
	if err != nil || len(list.Items) != 2 {
		t.Fatalf("listEntries: %+v, %v; want 2 entries", list, err)
	}
	for _, got := range list.Items {
		if got.name == "node1" && (got.err != nil || got.lease.Subnet != want.Subnet || !subnet.AttrsEqual(got.lease.Attrs, want.Attrs)) {
			t.Errorf("listed entry %+v; want node1's lease %+v", got, want)
		}
		if got.name == "node2" && !errors.Is(got.err, errNotManaged) {
			t.Errorf("listed entry %+v; want node2 not managed", got)
		}
	}
}

// TestRunWatchInitialListOfManyNodes: the first list of 20,000 Nodes (more
// than flanneld's 5,000-slot event queue, which never synced at 10,000:
// flannel issue 2252) reaches the sink whole, in one ReplacePeers, with
// nothing in between that could block or drop it.
func TestRunWatchInitialListOfManyNodes(t *testing.T) {
	const n = 20000
	objs := []runtime.Object{node("node0", "10.244.0.0/24", nil)}
	for i := range n {
		name := fmt.Sprintf("peer-%05d", i)
		cidr := fmt.Sprintf("11.%d.%d.0/24", i/256, i%256)
		objs = append(objs, node(name, cidr, peerAnnotations(fmt.Sprintf("198.51.100.%d", i%250+1), "02:00:00:00:00:01")))
	}
	_, sink := startWatch(t, fake.NewClientset(objs...))
	if got := len(sink.Peers()); got != n {
		t.Fatalf("first ReplacePeers had %d peers, want %d", got, n)
	}
}

// TestPeerSetRelistSendsTheDifference: a second complete list (the
// reflector re-listed after a watch expired) reaches the sink as the
// events that turn the old set into the new one, not as a second
// snapshot; an unusable node keeps its last good lease.
func TestPeerSetRelistSendsTheDifference(t *testing.T) {
	m := mustNewManager(t, testOptions(t, fake.NewClientset()))
	sink := subnettest.NewSink()
	p := newPeerSet(m, sink)
	n1 := node("node1", "10.244.1.0/24", peerAnnotations("192.0.2.11", "02:00:00:00:00:01"))
	n2 := node("node2", "10.244.2.0/24", peerAnnotations("192.0.2.12", "02:00:00:00:00:02"))
	n3 := node("node3", "10.244.3.0/24", peerAnnotations("192.0.2.13", "02:00:00:00:00:03"))
	if err := p.Replace([]any{n1, testAnn.entryOf(n2), n3}, "10"); err != nil {
		t.Fatal(err)
	}
	n2moved := node("node2", "10.244.2.0/24", peerAnnotations("192.0.2.22", "02:00:00:00:00:02"))
	n3bad := node("node3", "10.244.3.0/24", peerAnnotations("not-an-ip", "02:00:00:00:00:03"))
	n4 := node("node4", "10.244.4.0/24", peerAnnotations("192.0.2.14", "02:00:00:00:00:04"))
	if err := p.Replace([]any{testAnn.entryOf(n2moved), n3bad, n4}, "20"); err != nil {
		t.Fatal(err)
	}
	if sink.Replaces() != 1 {
		t.Errorf("%d ReplacePeers, want only the first list's", sink.Replaces())
	}
	waitPeers(t, sink, "after the re-list", map[string]string{
		"10.244.2.0/24": "192.0.2.22", "10.244.3.0/24": "192.0.2.13", "10.244.4.0/24": "192.0.2.14"})
}
