package lab

import (
	"context"
	"testing"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// NewT builds a lab for a test: it skips unless root, starts a throwaway
// etcd when opts.EtcdEndpoint is empty (and NoEtcdProxy is not set), uses a
// test temp dir when opts.WorkDir is empty, builds overlayd as the CNI
// plugin when opts.CNIPlugin is empty, and closes the lab in t.Cleanup (printing the
// end of each agent log first if the test failed).
func NewT(t testing.TB, opts Options) *Lab {
	t.Helper()
	netnsutil.RequireRoot(t)
	if opts.EtcdEndpoint == "" && !opts.NoEtcdProxy {
		opts.EtcdEndpoint = etcdtest.StartT(t, etcdtest.Options{}).Endpoint()
	}
	if opts.WorkDir == "" {
		opts.WorkDir = t.TempDir()
	}
	if opts.CNIPlugin == "" {
		opts.CNIPlugin = BuildOverlaydT(t)
	}
	l, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("build lab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			l.logAgents(t)
		}
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return l
}

func (l *Lab) logAgents(t testing.TB) {
	t.Helper()
	for _, n := range l.Nodes {
		if a := l.Agent(n); a != nil {
			t.Logf("%s agent log (%s), last lines:\n%s", n.Name, a.LogPath, a.LogTail(40))
		}
	}
}
