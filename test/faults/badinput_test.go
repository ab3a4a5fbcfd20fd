package faults

import (
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/subnet"
)

// TestMalformedLeaseEntries: keys and values under <prefix>/subnets that
// are not valid leases, written while the nodes run. Nobody exits, no
// kernel entry is written or removed for them, each is logged once (also
// across a re-list), and a known peer whose value turns to garbage keeps
// its entries: a bad value never takes a peer away. A node restarted with
// the garbage present comes up on its subnet with the same entries.
func TestMalformedLeaseEntries(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{nodes: 3, pods: 1})
	known := c.newFakePeers(netip.MustParsePrefix("10.244.240.0/24"), 1)[0]
	c.putPeers([]fakePeer{known})
	c.waitConverged(convergeTimeout)
	c.mustPingAll()
	before := kernelsOf(c)
	n0 := c.Nodes[0]
	writes := sum(metrics(t, n0), "overlayd_sync_writes_total")
	mark := logMark(t, n0)

	dir := subnet.SubnetsDir(subnet.DefaultPrefix)
	free := c.newFakePeers(netip.MustParsePrefix("10.244.241.0/24"), 6)
	bad := map[string]string{
		dir + "not-a-subnet":                `{"PublicIP":"198.51.100.7","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:07"}}`,
		dir + "10.244.1.7-24":               `{"PublicIP":"198.51.100.8","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:08"}}`,
		leaseKey(free[0].Subnet):            `{"PublicIP":`,
		leaseKey(free[1].Subnet):            `{"PublicIP":"not-an-ip","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:09"}}`,
		leaseKey(free[2].Subnet):            `{"PublicIP":"198.51.100.10","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"zz"}}`,
		leaseKey(free[3].Subnet):            `{"PublicIP":"198.51.100.11","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"01:00:5e:00:00:01"}}`,
		leaseKey(free[4].Subnet):            `{"PublicIP":"198.51.100.12","BackendType":"vxlan"}`,
		leaseKey(free[5].Subnet):            "\x00\xff binary",
		leaseKey(known.Subnet):              `{"PublicIP":"198.51.100.13","BackendType":"vxlan","BackendData":`,
		dir + "10.244.242.0-24/nested/deep": `{}`,
	}
	for k, v := range bad {
		c.put(k, v)
	}
	time.Sleep(resyncInterval + time.Second)
	// A re-list must not log them again.
	c.SetEtcdReachable(false)
	time.Sleep(200 * time.Millisecond)
	c.SetEtcdReachable(true)
	time.Sleep(resyncInterval + time.Second)

	labtest.RequireAlive(c.t, c.Lab)
	requireKernels(t, c, before, "after malformed entries")
	c.mustPingAllNow("after malformed entries")
	if got := sum(metrics(t, n0), "overlayd_sync_writes_total"); got != writes {
		t.Errorf("node0 made %v kernel writes for malformed entries, want none", got-writes)
	}
	lines := logSince(t, n0, mark)
	for key := range bad {
		name := strings.TrimPrefix(key, dir)
		if got := countContaining(lines, "malformed", name+" "); got != 1 {
			t.Errorf("node0 logged %s as malformed %d times, want once:\n%s", name, got, strings.Join(tail(lines, 30), "\n"))
		}
	}
	n1 := c.Nodes[1]
	subnetBefore := n1.Subnet
	c.restart(n1, syscall.SIGTERM)
	if n1.Subnet != subnetBefore {
		t.Fatalf("node1 came back on %s, want %s", n1.Subnet.Subnet, subnetBefore.Subnet)
	}
	// The restarted node keeps the entries of the peer whose value turned
	// to garbage, as the running nodes do (see
	// TestPeerKeptWhenItsLeaseTurnsMalformedAcrossRestart): after a full
	// resync every kernel is exactly as before.
	time.Sleep(resyncInterval + time.Second)
	requireKernels(t, c, before, "after node1 restarted with malformed entries present")
	c.mustPingAll()
}

// TestMalformedConfigWhileRunning: a broken network config written while
// the nodes run changes nothing (the config is read at start). A node
// restarted meanwhile waits, alive but not ready, logs the reason once,
// and its pods keep their traffic because the kernel state it left stays;
// once the config is fixed it comes up on the same subnet.
func TestMalformedConfigWhileRunning(t *testing.T) {
	t.Parallel()
	c := meshed(t, clusterOptions{nodes: 2, pods: 1})
	before := kernelsOf(c)
	good := c.ConfigJSON()
	n1 := c.Nodes[1]
	subnetBefore := n1.Subnet

	for _, bad := range []string{`{"Network":"10.244.0.0/16","SubnetLen":`, `{"Network":"10.244.0.0/16","SubnetLen":33,"Backend":{"Type":"vxlan"}}`} {
		c.writeConfig(bad)
		time.Sleep(resyncInterval)
		labtest.RequireAlive(c.t, c.Lab)
		requireKernels(t, c, before, "after a malformed config "+bad)
	}

	c.stop(n1, syscall.SIGTERM)
	mark := logMark(t, n1)
	a := c.start(n1)
	time.Sleep(3500 * time.Millisecond) // the config is retried every second
	if a.Exited() {
		t.Fatalf("node1 exited on a malformed config: %v", exitedError(a))
	}
	code, _, err := lab.GetIn(labtest.Context(t, 5*time.Second), n1.NS, n1.HealthzURL()+"/readyz")
	if err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("node1 /readyz with a malformed config: %d %v, want 503", code, err)
	}
	lines := logSince(t, n1, mark)
	if got := countContaining(lines, "waiting for a valid network config", "SubnetLen"); got != 1 {
		t.Errorf("node1 logged the config problem %d times in 3.5s, want once:\n%s", got, tail(lines, 20))
	}
	c.mustPingAllNow("while node1 waits for a valid config")
	requireKernels(t, c, before, "while node1 waits for a valid config")

	c.writeConfig(good)
	c.waitUp(n1)
	if n1.Subnet != subnetBefore {
		t.Fatalf("node1 came back on %s, want %s", n1.Subnet.Subnet, subnetBefore.Subnet)
	}
	c.waitConverged(convergeTimeout)
	c.mustPingAll()
}

// TestPeerKeptWhenItsLeaseTurnsMalformedAcrossRestart: a running node
// keeps a known peer whose lease value turns to garbage (a bad value never
// takes a peer away); a node restarted while the garbage is there must
// keep the entries it has for that subnet as well, since the subnet is
// still held and the kernel is all it remembers of the peer. Otherwise
// whether a node reaches that peer depends on whether it restarted.
func TestPeerKeptWhenItsLeaseTurnsMalformedAcrossRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, value string }{
		{"undecodable value", `{"PublicIP":"198.51.100.13","BackendType":"vxlan","BackendData":`},
		{"bad VTEP MAC", `{"PublicIP":"198.51.100.13","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"zz"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, clusterOptions{nodes: 2})
			known := c.newFakePeers(netip.MustParsePrefix("10.244.240.0/24"), 1)[0]
			c.putPeers([]fakePeer{known})
			c.waitConverged(convergeTimeout)
			before := kernelsOf(c)
			c.put(leaseKey(known.Subnet), tc.value)
			time.Sleep(resyncInterval + time.Second)
			requireKernels(t, c, before, "running, after the lease of a known peer turned malformed")
			c.restart(c.Nodes[1], syscall.SIGTERM)
			time.Sleep(resyncInterval + time.Second)
			requireKernels(t, c, before, "restarted while the lease of a known peer is malformed")
		})
	}
}
