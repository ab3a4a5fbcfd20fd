package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TestRestartKeepsSubnetMACAndKernelState: SIGTERM exits 0 and leaves
// everything in place; the restarted daemon gets the same subnet and VTEP
// MAC and makes zero kernel writes over the intact state.
func TestRestartKeepsSubnetMACAndKernelState(t *testing.T) {
	forEachAPI(t, testRestartKeepsSubnetMACAndKernelState)
}

func testRestartKeepsSubnetMACAndKernelState(t *testing.T, api string) {
	c := startClusterAPI(t, api, 3, 1, "--resync-interval=2s")
	c.mustPingAll()
	n := c.Nodes[1]
	mac, _ := leaseOf(t, c, n)
	before := n.Subnet.Lease()
	ctx := labtest.Context(t, 30*time.Second)
	stBefore := labtest.MustDeviceState(t, ctx, c.Lab, n, lab.FlannelDevice)

	if err := c.Agent(n).Stop(syscall.SIGTERM); err != nil {
		t.Fatalf("overlayd did not exit 0 on SIGTERM: %v", err)
	}
	stStopped := labtest.MustDeviceState(t, ctx, c.Lab, n, lab.FlannelDevice)
	if fmt.Sprint(stStopped) != fmt.Sprint(stBefore) {
		t.Fatalf("SIGTERM changed the kernel state:\nbefore %v\nafter  %v", stBefore, stStopped)
	}
	c.mustPingAll() // the data plane keeps working while the daemon is down

	c.start(n)
	c.waitUp(n)
	if after := n.Subnet.Lease(); after != before {
		t.Fatalf("subnet changed across restart: %s -> %s", before, after)
	}
	if macAfter, _ := leaseOf(t, c, n); macAfter != mac {
		t.Fatalf("VTEP MAC changed across restart: %s -> %s", mac, macAfter)
	}
	waitInSync(t, n, "overlayd_sync_in_sync")
	if w := kernelWrites(t, n); w != 0 {
		t.Fatalf("warm restart made %v kernel writes, want 0", w)
	}
	c.mustPingAll()
}

// TestDeletedLeaseDisappearsFromPeers: a node whose lease is deleted is
// removed from the other nodes' routes, neighbours and FDB within seconds.
func TestDeletedLeaseDisappearsFromPeers(t *testing.T) {
	forEachAPI(t, testDeletedLeaseDisappearsFromPeers)
}

func testDeletedLeaseDisappearsFromPeers(t *testing.T, api string) {
	c := startClusterAPI(t, api, 3, 0)
	gone := c.Nodes[2]
	mac, _ := leaseOf(t, c, gone)
	ctx := labtest.Context(t, 30*time.Second)
	for _, n := range c.Nodes[:2] {
		labtest.Eventually(t, 10*time.Second, n.Name+" has the entries of "+gone.Name, func() error {
			st, err := c.DeviceState(ctx, n, lab.FlannelDevice)
			if err != nil {
				return err
			}
			return expectEntries(st, gone.Subnet.Lease(), mac, gone.PublicIP)
		})
	}
	// Stop it first: a running overlayd would re-create its deleted lease.
	if err := c.Agent(gone).Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deleteLease(t, c, gone)
	start := time.Now()
	for _, n := range c.Nodes[:2] {
		labtest.Eventually(t, 5*time.Second, n.Name+" forgets "+gone.Name, func() error {
			st, err := c.DeviceState(ctx, n, lab.FlannelDevice)
			if err != nil {
				return err
			}
			return expectNoEntries(st, gone.Subnet.Lease(), mac)
		})
	}
	t.Logf("peers removed %s's entries %s after its lease was deleted", gone.Name, time.Since(start).Round(time.Millisecond))
}

// TestOwnLeaseDeletedIsTakenBack: overlayd re-creates its own lease with
// the same subnet instead of exiting as flanneld does.
func TestOwnLeaseDeletedIsTakenBack(t *testing.T) {
	forEachAPI(t, testOwnLeaseDeletedIsTakenBack)
}

func testOwnLeaseDeletedIsTakenBack(t *testing.T, api string) {
	c := startClusterAPI(t, api, 2, 1)
	n := c.Nodes[0]
	before := n.Subnet.Lease()
	deleteLease(t, c, n)
	waitLease(t, c.store, before, true)
	if c.Agent(n).Exited() {
		t.Fatalf("overlayd exited after its lease was deleted:\n%s", c.Agent(n).LogTail(20))
	}
	if got := n.Subnet.Lease(); got != before {
		t.Fatalf("subnet changed: %s -> %s", before, got)
	}
	c.mustPingAll()
}

// TestKernelDriftRepaired: entries deleted or altered behind the daemon's
// back are restored by the periodic resync.
func TestKernelDriftRepaired(t *testing.T) {
	c := startCluster(t, 2, 1, "--resync-interval=1s")
	c.mustPingAll()
	self, peer := c.Nodes[0], c.Nodes[1]
	mac, _ := leaseOf(t, c, peer)
	other := peer.Subnet.Lease()
	netnsutil.MustExec(t, self.NS, "ip", "route", "del", other.String())
	netnsutil.MustExec(t, self.NS, "ip", "neigh", "replace", other.Addr().String(), "lladdr", "02:00:00:00:00:99", "dev", "flannel.1", "nud", "permanent")
	netnsutil.MustExec(t, self.NS, "bridge", "fdb", "del", mac, "dev", "flannel.1", "dst", peer.PublicIP.String(), "self")
	netnsutil.MustExec(t, self.NS, "bridge", "fdb", "append", "02:00:00:00:00:77", "dev", "flannel.1", "dst", "192.0.2.99", "self", "permanent")
	ctx := labtest.Context(t, 30*time.Second)
	labtest.Eventually(t, 10*time.Second, "drift repaired", func() error {
		st, err := c.DeviceState(ctx, self, lab.FlannelDevice)
		if err != nil {
			return err
		}
		if err := expectEntries(st, other, mac, peer.PublicIP); err != nil {
			return err
		}
		for _, l := range append(st.Neigh, st.FDB...) {
			if strings.Contains(l, "02:00:00:00:00:99") || strings.Contains(l, "02:00:00:00:00:77") {
				return fmt.Errorf("stale entry still there: %s", l)
			}
		}
		return nil
	})
	c.mustPingAll()
}

func deleteLease(t *testing.T, c *cluster, n *lab.Node) {
	t.Helper()
	if err := c.store.deleteLease(labtest.Context(t, 5*time.Second), n.Subnet.Lease()); err != nil {
		t.Fatalf("delete lease of %s: %v", n.Name, err)
	}
}
