package labtest

import (
	"context"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
)

// WaitExit waits up to within for a to exit and returns how it exited
// (a.Wait()); still running by then, it fails the test with what (the
// agent that should have stopped) and a's last log lines.
func WaitExit(t testing.TB, a *lab.Agent, within time.Duration, what string) error {
	t.Helper()
	select {
	case <-a.Done():
	case <-time.After(within):
		t.Fatalf("%s still running after %s:\n%s", what, within, a.LogTail(20))
	}
	return a.Wait()
}

// VtepMAC is the VTEP MAC in n's lease in the lab's etcd.
func VtepMAC(t testing.TB, ctx context.Context, l *lab.Lab, n *lab.Node) string {
	t.Helper()
	attrs, err := l.NodeLease(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	mac, err := lab.VtepMAC(attrs)
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// RequireAlive fails the test, with the agent's last log lines, if the
// agent of any of nodes (every node of l when none are named) is not
// running.
func RequireAlive(t testing.TB, l *lab.Lab, nodes ...*lab.Node) {
	t.Helper()
	if len(nodes) == 0 {
		nodes = l.Nodes
	}
	for _, n := range nodes {
		if a := l.Agent(n); a == nil || a.Exited() {
			var tail string
			if a != nil {
				tail = a.LogTail(30)
			}
			t.Fatalf("overlayd on %s is not running:\n%s", n.Name, tail)
		}
	}
}
