package faults

import (
	"errors"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// TestSubnetFileUnwritable: the directory of the subnet file (a tiny
// tmpfs standing for /run/flannel) is read-only, or full, when a
// restarted node writes its subnet file (with new content: --ip-masq
// turned off). The node keeps running and programs its peers, /readyz
// answers 503, one error names the path, the old file stays whole (no
// temporary file left); once the directory is usable again the retry
// writes the new file and the node becomes ready.
func TestSubnetFileUnwritable(t *testing.T) {
	tests := []struct {
		name  string
		block func(t *testing.T, dir string)
		// fix runs with the agent's pid: a remount read-write must also be
		// made in the agent's copy of the mount.
		fix func(t *testing.T, dir string, pid int)
	}{
		{"read-only", remountTmpfs("ro"), remountReadWrite},
		{"full", fillDir, func(t *testing.T, dir string, _ int) { must(t, os.Remove(filepath.Join(dir, "filler"))) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, clusterOptions{nodes: 1, stopped: true})
			n := c.Nodes[0]
			dir := mountTmpfs(t, "64k")
			n.SubnetFile = filepath.Join(dir, "subnet.env")
			c.start(n)
			c.waitUp(n)
			old, err := os.ReadFile(n.SubnetFile)
			must(t, err)
			c.stop(n, syscall.SIGTERM)

			tt.block(t, dir)
			mark := logMark(t, n)
			c.start(n, "--ip-masq=false")
			peers := c.newFakePeers(netip.MustParsePrefix("10.244.100.0/24"), 2)
			c.putPeers(peers)
			labtest.Eventually(t, convergeTimeout, "peers programmed while the file cannot be written", func() error {
				return c.converged(n)
			})
			time.Sleep(3 * time.Second) // a few retries
			labtest.RequireAlive(c.t, c.Lab)
			if code := readyz(t, n); code != http.StatusServiceUnavailable {
				t.Fatalf("/readyz answered %d with the subnet file unwritten, want 503", code)
			}
			lines := logSince(t, n, mark)
			if got := countContaining(lines, "cannot write the subnet file", n.SubnetFile); got != 1 {
				t.Errorf("%d error lines naming %s, want 1:\n%s", got, n.SubnetFile, strings.Join(tail(lines, 20), "\n"))
			}
			requireFile(t, n.SubnetFile, old)
			requireNoTempFiles(t, dir)

			tt.fix(t, dir, c.Agent(n).Pid())
			c.waitUp(n)
			if n.Subnet.IPMasq {
				t.Errorf("subnet file after the retry still has FLANNEL_IPMASQ=true")
			}
			c.waitConverged(convergeTimeout)
			labtest.RequireAlive(c.t, c.Lab)
		})
	}
}

// TestTruncatedSubnetFileAtStart: the subnet file was cut in the middle
// of a value (a crash of whatever wrote it, a full disk). The node starts,
// says once that it ignores the file (naming it), keeps its subnet (its
// lease carries its address) and writes the file whole again.
func TestTruncatedSubnetFileAtStart(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{nodes: 1})
	n := c.Nodes[0]
	sn := n.Subnet.Lease()
	whole, err := os.ReadFile(n.SubnetFile)
	must(t, err)
	c.stop(n, syscall.SIGKILL)
	cut := strings.Index(string(whole), "FLANNEL_SUBNET=") + len("FLANNEL_SUBNET=10.2")
	must(t, os.WriteFile(n.SubnetFile, whole[:cut], 0o644))
	mark := logMark(t, n)
	c.start(n)
	c.waitUp(n)
	if n.Subnet.Lease() != sn {
		t.Errorf("came back on %s, had %s", n.Subnet.Lease(), sn)
	}
	requireFile(t, n.SubnetFile, whole)
	if got := countContaining(logSince(t, n, mark), "ignoring unreadable previous subnet file", n.SubnetFile); got != 1 {
		t.Errorf("%d lines saying the truncated file is ignored, want 1", got)
	}
	labtest.RequireAlive(c.t, c.Lab)
}

// mountTmpfs mounts a tmpfs of size on a fresh directory of the test's
// temp dir (nothing else is mounted) and unmounts it in t.Cleanup. Agents
// started afterwards get a copy of the mount in their own mount
// namespace (ip netns exec), sharing its superblock: filling it or
// remounting it read-only reaches them too.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run-flannel")
	must(t, os.Mkdir(dir, 0o755))
	run(t, "mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "overlayd-test", dir)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// remountTmpfs returns a step remounting the tmpfs with opt: a change of
// the superblock, seen through every copy of the mount.
func remountTmpfs(opt string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) { run(t, "mount", "-o", "remount,"+opt, dir) }
}

// remountReadWrite undoes remountTmpfs("ro"): in the root mount
// namespace and in the agent's (pid's) copy, whose own read-only flag
// the superblock's remount had set too.
func remountReadWrite(t *testing.T, dir string, pid int) {
	run(t, "mount", "-o", "remount,rw", dir)
	run(t, "nsenter", "-t", strconv.Itoa(pid), "-m", "mount", "-o", "remount,rw", dir)
}

// fillDir writes dir/filler until the file system is full.
func fillDir(t *testing.T, dir string) {
	f, err := os.Create(filepath.Join(dir, "filler"))
	must(t, err)
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			return
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func readyz(t *testing.T, n *lab.Node) int {
	t.Helper()
	code, _, err := lab.GetIn(labtest.Context(t, 5*time.Second), n.NS, n.HealthzURL()+"/readyz")
	must(t, err)
	return code
}

func requireFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	must(t, err)
	if string(got) != string(want) {
		t.Fatalf("%s is %q, want %q", path, got, want)
	}
}

func requireNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left in %s", e.Name(), dir)
		}
	}
}
