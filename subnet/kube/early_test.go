package kube

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

// pagedAPI serves ListNodes in pages of opts.Limit, as the API server
// does (the fake clientset ignores the limit).
type pagedAPI struct{ fakeAPI }

func (p pagedAPI) ListNodes(ctx context.Context, opts metav1.ListOptions) (*corev1.NodeList, error) {
	all, err := p.fakeAPI.ListNodes(ctx, metav1.ListOptions{})
	if err != nil || opts.Limit <= 0 {
		return all, err
	}
	from := 0
	if opts.Continue != "" {
		if from, err = strconv.Atoi(opts.Continue); err != nil {
			return nil, fmt.Errorf("bad continue token %q", opts.Continue)
		}
	}
	to := min(from+int(opts.Limit), len(all.Items))
	page := &corev1.NodeList{ListMeta: all.ListMeta, Items: all.Items[from:to]}
	if to < len(all.Items) {
		page.Continue = strconv.Itoa(to)
	}
	return page, nil
}

// earlySink records early peers, and what it had been sent when each came.
type earlySink struct {
	*subnettest.Sink
	mu             sync.Mutex
	early          []subnet.Lease
	calls          int
	afterFirstRepl bool
}

func (s *earlySink) AddEarlyPeers(leases []subnet.Lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.early = append(s.early, leases...)
	s.calls++
	s.afterFirstRepl = s.afterFirstRepl || s.Sink.Replaces() > 0
}

// TestFirstListPagesGoEarly: each page of the first Node list reaches an
// EarlyPeerSink as soon as it is read (managed peers only, not our own
// node), before the complete list's ReplacePeers, which follows as always.
func TestFirstListPagesGoEarly(t *testing.T) {
	const n = 2*listPageSize + 7
	objs := []runtime.Object{node("node0", "10.244.0.0/24", nil), node("unmanaged", "10.244.250.0/24", nil)}
	for i := range n {
		objs = append(objs, node(fmt.Sprintf("peer-%04d", i), fmt.Sprintf("11.%d.%d.0/24", i/256, i%256),
			peerAnnotations("198.51.100.7", "02:00:00:00:00:01")))
	}
	o := testOptions(t, fake.NewClientset(objs...))
	o.Client = pagedAPI{o.Client.(fakeAPI)}
	m := mustNewManager(t, o)
	ctx := testContext(t, 20*time.Second)
	if _, err := m.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	sink := &earlySink{Sink: subnettest.NewSink()}
	done := make(chan error, 1)
	go func() { done <- m.RunWatch(ctx, sink) }()
	defer func() { cancel(); <-done }()
	if !sink.WaitFor(10*time.Second, func(s *subnettest.Sink) bool { return s.Replaces() == 1 }) {
		t.Fatal("no ReplacePeers")
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.calls != 3 || len(sink.early) != n || sink.afterFirstRepl {
		t.Fatalf("early: %d calls with %d leases (after ReplacePeers: %v), want 3 pages with %d before it",
			sink.calls, len(sink.early), sink.afterFirstRepl, n)
	}
	for _, l := range sink.early {
		if l.Subnet.Addr().As4()[0] != 11 {
			t.Errorf("early lease %s is not a managed peer's", l.Subnet)
		}
	}
	if got := len(sink.Peers()); got != n {
		t.Errorf("ReplacePeers had %d peers, want %d", got, n)
	}
}
