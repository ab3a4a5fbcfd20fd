package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestMigrateV2ToV3KeepsSubnetsAndTraffic: three nodes on the v2 API
// (leases in flannel v0.11's JSON form) carry traffic; `overlayd
// migrate-etcd` copies the keyspace to v3; the nodes restart on v3 one by
// one; traffic flows after every step and every node keeps its subnet.
func TestMigrateV2ToV3KeepsSubnetsAndTraffic(t *testing.T) {
	c := startClusterAPI(t, "v2", 3, 1)
	c.mustPingAll()
	for _, n := range c.Nodes {
		mac, raw := leaseOf(t, c, n)
		want := withNodeID(t, fmt.Sprintf(`{"PublicIP":"%s","BackendType":"vxlan","BackendData":{"VtepMAC":"%s"}}`, n.PublicIP, mac), raw)
		if raw != want {
			t.Fatalf("v2 lease of %s\n got %s\nwant %s (flannel v0.11's form)", n.Name, raw, want)
		}
	}

	endpoint := c.store.(v2Store).endpoint
	out, err := exec.Command(overlaydBin, "migrate-etcd", "--etcd-endpoints="+endpoint).CombinedOutput()
	if err != nil {
		t.Fatalf("migrate-etcd: %v\n%s", err, out)
	}
	t.Logf("migrate-etcd:\n%s", out)
	again, err := exec.Command(overlaydBin, "migrate-etcd", "--etcd-endpoints="+endpoint).CombinedOutput()
	if err != nil || !strings.Contains(string(again), "0 copied, 0 overwritten, 4 already present") {
		t.Fatalf("second migrate-etcd run must change nothing: %v\n%s", err, again)
	}

	c.store = v3Store{c.Lab}
	c.extra = []string{"--etcd-api=v3"}
	for _, n := range c.Nodes {
		before := n.Subnet.Lease()
		mac, _ := leaseOf(t, c, n) // the migrated v3 lease
		if err := c.Agent(n).Stop(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		c.start(n)
		c.waitUp(n)
		if got := n.Subnet.Lease(); got != before {
			t.Fatalf("%s changed subnet on v3: %s -> %s", n.Name, before, got)
		}
		macAfter, raw := leaseOf(t, c, n)
		want := withNodeID(t, fmt.Sprintf(`{"PublicIP":"%s","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"%s"}}`, n.PublicIP, mac), raw)
		if macAfter != mac || raw != want {
			t.Fatalf("v3 lease of %s after restart\n got %s\nwant %s", n.Name, raw, want)
		}
		c.mustPingAll()
	}
}
