package labtest

import (
	"context"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
)

// StartCluster builds a lab for opts (etcd v3, pods by opts.PodsPerNode,
// bin as the CNI plugin when opts.CNIPlugin is empty), writes the lab's
// network config, starts overlayd bin with extra flags on every node,
// waits until each is up and adds the pods. Everything is torn down in
// t.Cleanup.
func StartCluster(t testing.TB, bin string, opts lab.Options, extra ...string) *lab.Lab {
	t.Helper()
	return StartClusterWithin(t, bin, opts, 30*time.Second, extra...)
}

// StartClusterWithin is StartCluster giving each node up to upTimeout to
// come up.
func StartClusterWithin(t testing.TB, bin string, opts lab.Options, upTimeout time.Duration, extra ...string) *lab.Lab {
	t.Helper()
	if opts.CNIPlugin == "" {
		opts.CNIPlugin = bin
	}
	l := NewLab(t, opts, "")
	for _, n := range l.Nodes {
		StartAgent(t, l, n, lab.OverlaydArgs(bin, l, n, extra...))
	}
	for _, n := range l.Nodes {
		WaitUp(t, l, n, upTimeout)
	}
	ctx := Context(t, 60*time.Second)
	for _, n := range l.Nodes {
		if err := l.AddPods(ctx, n); err != nil {
			t.Fatalf("add pods on %s: %v", n.Name, err)
		}
	}
	return l
}

// StartAgent runs argv as n's agent (see lab.StartAgent), failing the
// test if it cannot start.
func StartAgent(t testing.TB, l *lab.Lab, n *lab.Node, argv []string) *lab.Agent {
	t.Helper()
	a, err := l.StartAgent(context.Background(), n, argv)
	if err != nil {
		t.Fatalf("start overlayd on %s: %v", n.Name, err)
	}
	return a
}

// MustPingAll fails the test unless every pod reaches every other pod
// (with retries while entries converge).
func MustPingAll(t testing.TB, l *lab.Lab) {
	t.Helper()
	PingAll(t, l, "ping all", 30*time.Second, 20, 250*time.Millisecond)
}
