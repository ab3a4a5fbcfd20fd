package hostile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/subnet"
)

// pathWithout is a PATH directory of links to every command of /usr/sbin
// and /usr/bin except the ones named: a host where they are not installed.
func pathWithout(t *testing.T, missing ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, src := range []string{"/usr/sbin", "/usr/bin"} {
		entries, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := e.Name()
			if strings.Contains(strings.Join(missing, "\x00")+"\x00", name+"\x00") {
				continue
			}
			if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
				continue // /usr/sbin first, as in root's PATH
			}
			if err := os.Symlink(filepath.Join(src, name), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// TestPeerFilterFailsClosedAtStart: with --vxlan-peer-filter on a node
// without ipset, overlayd refuses to start: a non-zero exit with an error
// naming the filter, and neither the VXLAN device nor a lease exists (the
// filter is installed before both). On today's main it starts, becomes
// ready and serves VXLAN to anyone, logging an ERROR every 1.2 s.
func TestPeerFilterFailsClosedAtStart(t *testing.T) {
	c := newCluster(t, lab.Options{Nodes: 1})
	n := c.Nodes[0]
	path := pathWithout(t, "ipset")
	argv := append([]string{"env", "PATH=" + path}, lab.OverlaydArgs(overlaydBin, c.Lab, n, "--vxlan-peer-filter")...)
	a, err := c.StartAgent(t.Context(), n, argv)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-time.After(upTimeout):
		t.Fatalf("overlayd without ipset still running after %s:\n%s", upTimeout, a.LogTail(20))
	}
	if err := a.Wait(); err == nil {
		t.Errorf("exit status 0, want non-zero")
	}
	// The start-up check of the rules mode (rules.go) or the installation
	// (peerfilter_start.go) says it, whichever finds it first.
	if err := labtest.LogContains(a, "level=ERROR", "--vxlan-peer-filter", "ipset"); err != nil {
		t.Error(err)
	}
	if out, err := exec.Command("ip", "-n", n.NS, "link", "show", "flannel.1").CombinedOutput(); err == nil {
		t.Errorf("the VXLAN device exists although the filter could not be installed:\n%s", out)
	}
	cli, err := c.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(labtest.Context(t, 10*time.Second), subnet.SubnetsDir(subnet.DefaultPrefix), clientv3WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Errorf("%d leases taken by a node that refused to start", len(resp.Kvs))
	}
}
