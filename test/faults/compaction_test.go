package faults

import (
	"net/netip"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/labtest"
)

// TestWatchRecoversFromCompaction: while the nodes cannot reach etcd,
// peers are added, removed and changed and etcd is compacted past every
// watch's revision, so each watch resumes at a compacted revision. The
// watch must recover by re-listing (flannel's never did, and filled
// disks with logs): every change is applied, no other peer is touched
// (no burst of kernel writes: only the changed peers' entries are
// written), the history-lost path is logged a bounded number of times,
// and the watch then stays quiet and keeps delivering.
func TestWatchRecoversFromCompaction(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{nodes: 3, pods: 1})
	// 50 bystanders: re-writing everything after the re-list would cost
	// at least 150 writes.
	peers := c.newFakePeers(netip.MustParsePrefix("10.244.100.0/24"), 53)
	removed, changed, added := peers[50], peers[51], peers[52]
	c.putPeers(peers[:52])
	c.waitConverged(convergeTimeout)
	c.mustPingAll()

	n0 := c.Nodes[0]
	writesBefore := sum(metrics(t, n0), "overlayd_sync_writes_total")
	marks := map[string]int64{}
	for _, n := range c.Nodes {
		marks[n.Name] = logMark(t, n)
	}

	c.SetEtcdReachable(false)
	changed.MAC, changed.PublicIP = fakeMAC(99999), netip.MustParseAddr("198.51.100.251")
	c.putPeers([]fakePeer{changed, added})
	c.deleteLeases(removed.Subnet)
	c.compact()
	c.SetEtcdReachable(true)

	c.waitConverged(reconnectTimeout)
	c.mustPingAllNow("after the compaction")
	// Only the three changed peers' entries may be written: 3 added, 3
	// removed, and for the changed one a new neighbour MAC, a new FDB
	// entry and the old one deleted (its route stays).
	writes := sum(metrics(t, n0), "overlayd_sync_writes_total") - writesBefore
	if writes > 9 {
		t.Errorf("node0 made %v kernel writes for 3 changed peers (of %d): a burst", writes, len(peers)+2)
	}
	t.Logf("node0: %v kernel writes after the compaction", writes)
	for _, n := range c.Nodes {
		m := metrics(t, n)
		if lost := m[`overlayd_subnet_watch_restarts_total{reason="history_lost"}`]; lost < 1 || lost > 2 {
			t.Errorf("%s: %v watch restarts for lost history, want 1 (or 2)", n.Name, lost)
		}
	}
	settled := map[string]float64{}
	for _, n := range c.Nodes {
		settled[n.Name] = sum(metrics(t, n), "overlayd_subnet_watch_restarts_total")
	}

	// Quiet afterwards: no restarts, and the watch still delivers.
	time.Sleep(2 * resyncInterval)
	late := c.newFakePeers(netip.MustParsePrefix("10.244.200.0/24"), 1)
	c.putPeers(late)
	c.waitConverged(convergeTimeout)
	for _, n := range c.Nodes {
		if got := sum(metrics(t, n), "overlayd_subnet_watch_restarts_total"); got != settled[n.Name] {
			t.Errorf("%s: the watch restarted again (%v -> %v) after recovering", n.Name, settled[n.Name], got)
		}
		lines := logSince(t, n, marks[n.Name])
		lost := countContaining(lines, "history lost")
		if lost < 1 || lost > 2 {
			t.Errorf("%s logged %d history-lost lines, want 1 (or 2):\n%s", n.Name, lost, tail(lines, 20))
		}
		t.Logf("%s: %d log lines, %d about lost history", n.Name, len(lines), lost)
		// A re-list logs the changed peers, not the 50 bystanders.
		if len(lines) > 40 {
			t.Errorf("%s logged %d lines for a compaction and 4 peer changes:\n%s", n.Name, len(lines), tail(lines, 40))
		}
	}
	labtest.RequireAlive(c.t, c.Lab)
	requireQuietLogs(t, c, 2*resyncInterval)
}

// compact compacts etcd's history up to its current revision.
func (c *cluster) compact() {
	c.t.Helper()
	ctx := labtest.Context(c.t, 10*time.Second)
	resp, err := c.cli.Get(ctx, "compaction-probe")
	must(c.t, err)
	if _, err := c.cli.Compact(ctx, resp.Header.Revision); err != nil {
		c.t.Fatalf("compact at %d: %v", resp.Header.Revision, err)
	}
}

func tail(lines []string, n int) []string { return lines[max(0, len(lines)-n):] }
