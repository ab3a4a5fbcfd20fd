package kube

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/overlayd/overlayd/subnet"
)

var (
	testNetwork = netip.MustParsePrefix("10.244.0.0/16")
	testAnn     = mustAnnotations(DefaultAnnotationPrefix)
	testAttrs   = subnet.LeaseAttrs{
		PublicIP:    netip.MustParseAddr("192.0.2.10"),
		BackendType: subnet.BackendVXLAN,
		BackendData: []byte(`{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:01"}`),
	}
)

func mustAnnotations(prefix string) Annotations {
	a, err := NewAnnotations(prefix)
	if err != nil {
		panic(err)
	}
	return a
}

// node builds a Node with a podCIDR ("" for none) and annotations.
func node(name, podCIDR string, ann map[string]string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}}
	if podCIDR != "" {
		n.Spec.PodCIDR = podCIDR
		n.Spec.PodCIDRs = []string{podCIDR}
	}
	return n
}

// peerAnnotations are the annotations an agent with public ip and mac writes.
func peerAnnotations(ip, mac string) map[string]string {
	return map[string]string{
		testAnn.SubnetKubeManaged: "true",
		testAnn.BackendType:       "vxlan",
		testAnn.BackendData:       `{"VNI":1,"VtepMAC":"` + mac + `"}`,
		testAnn.PublicIP:          ip,
	}
}

func testOptions(t *testing.T, cs *fake.Clientset) Options {
	t.Helper()
	return Options{
		Client: fakeAPI{cs}, NodeName: "node0", Annotations: testAnn, Network: testNetwork, Attrs: testAttrs,
		RetryInterval: 10 * time.Millisecond, RecheckInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
}

// newTestManager is NewManager(testOptions(t, cs)), failing the test on error.
func newTestManager(t *testing.T, cs *fake.Clientset) *Manager {
	t.Helper()
	return mustNewManager(t, testOptions(t, cs))
}

// wantAnnotations fails the test unless got is exactly want.
func wantAnnotations(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("annotations %v, want exactly %v", got, want)
	}
}

// mustNewManager is NewManager(o), failing the test on error.
func mustNewManager(t *testing.T, o Options) *Manager {
	t.Helper()
	m, err := NewManager(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mustAcquire acquires m's lease within 5s, failing the test on error.
func mustAcquire(t *testing.T, m *Manager) subnet.Lease {
	t.Helper()
	lease, err := m.Acquire(testContext(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return lease
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func getNode(t *testing.T, cs *fake.Clientset, name string) *corev1.Node {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node %s: %v", name, err)
	}
	return n
}

// eventually polls cond for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var metaUpdate = metav1.UpdateOptions{}
