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
	if opts.CNIPlugin == "" {
		opts.CNIPlugin = bin
	}
	l := lab.NewT(t, opts)
	ctx := Context(t, 60*time.Second)
	if err := l.WriteConfig(ctx, l.ConfigJSON()); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes {
		if _, err := l.StartAgent(context.Background(), n, lab.OverlaydArgs(bin, l, n, extra...)); err != nil {
			t.Fatalf("start overlayd on %s: %v", n.Name, err)
		}
	}
	for _, n := range l.Nodes {
		WaitUp(t, l, n, 30*time.Second)
	}
	for _, n := range l.Nodes {
		if err := l.AddPods(ctx, n); err != nil {
			t.Fatalf("add pods on %s: %v", n.Name, err)
		}
	}
	return l
}

// MustPingAll fails the test unless every pod reaches every other pod
// (with retries while entries converge).
func MustPingAll(t testing.TB, l *lab.Lab) {
	t.Helper()
	m, err := l.PingAllRetry(Context(t, 30*time.Second), 20, 250*time.Millisecond)
	if err != nil {
		t.Fatalf("ping all: %v\n%s", err, m)
	}
	if err := m.Err(); err != nil {
		t.Fatalf("pods cannot reach each other: %v\n%s", err, m)
	}
}
