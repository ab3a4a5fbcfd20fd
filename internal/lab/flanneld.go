package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// FlanneldEnv names a flanneld binary to use instead of the one
// scripts/flanneld.sh caches.
const FlanneldEnv = "OVERLAYD_FLANNELD"

// FlanneldHealthzPort is where FlanneldArgs makes flanneld serve
// /healthz, on the node's underlay address (the port overlayd's agents
// use, so WaitReady-style probes work for both; only one agent runs on a
// node at a time).
const FlanneldHealthzPort = HealthzPort

// FlanneldBinary is the real flanneld the tests run next to overlayd:
// $OVERLAYD_FLANNELD when set, else where scripts/flanneld.sh caches it,
// $(go env GOCACHE)/overlayd-flanneld/flanneld. The error wraps
// fs.ErrNotExist when the binary is not there.
func FlanneldBinary() (string, error) {
	bin := os.Getenv(FlanneldEnv)
	if bin == "" {
		out, err := exec.Command("go", "env", "GOCACHE").Output()
		if err != nil {
			return "", fmt.Errorf("flanneld binary: go env GOCACHE: %w", err)
		}
		bin = filepath.Join(strings.TrimSpace(string(out)), "overlayd-flanneld", "flanneld")
	}
	st, err := os.Stat(bin)
	if err != nil {
		return "", fmt.Errorf("flanneld binary %s: %w", bin, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("flanneld binary %s: not an executable file", bin)
	}
	return bin, nil
}

// FlanneldBinaryT is FlanneldBinary for a test: when the binary is
// absent the test is skipped, except in CI (CI=true), where scripts/test.sh
// builds it and its absence is a failure.
func FlanneldBinaryT(t testing.TB) string {
	t.Helper()
	bin, err := FlanneldBinary()
	if err == nil {
		return bin
	}
	if errors.Is(err, fs.ErrNotExist) && os.Getenv("CI") != "true" {
		t.Skipf("%v: run scripts/flanneld.sh first (scripts/test.sh does)", err)
	}
	t.Fatal(err)
	return ""
}

// FlanneldArgs is the command line of a real flanneld on node n, the
// counterpart of OverlaydArgs: etcd v3 through the proxy with the default
// prefix, --iface=ul0, --public-ip, the node's subnet file (flanneld's
// default, /run/flannel, is shared by every namespace), --ip-masq, and
// /healthz on the underlay address.
func FlanneldArgs(bin string, l *Lab, n *Node, extra ...string) []string {
	return agentArgs(bin, l, n, FlanneldHealthzPort, extra)
}

// StartFlanneld runs a real flanneld on n as the node's agent (see
// StartAgent and FlanneldArgs).
func (l *Lab) StartFlanneld(ctx context.Context, n *Node, bin string, extra ...string) (*Agent, error) {
	a, err := l.StartAgent(ctx, n, FlanneldArgs(bin, l, n, extra...))
	if err != nil {
		return nil, fmt.Errorf("start flanneld: %w", err)
	}
	return a, nil
}
