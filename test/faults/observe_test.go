package faults

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/statusdoc"
)

// kernelState is a node's per-peer entries on flannel.1, one canonical
// line each, sorted, duplicates kept (a duplicate is a bug):
//
//	route  "10.244.31.0/24 via 10.244.31.0 onlink"
//	neigh  "10.244.31.0 lladdr 36:0f:a3:21:f5:f0 PERMANENT"
//	fdb    "36:0f:a3:21:f5:f0 dst 192.0.2.11 self permanent"
//
// Only routes inside the cluster network count: others on the device are
// not overlayd's.
type kernelState struct {
	Routes, Neigh, FDB []string
}

func (s kernelState) entries() int { return len(s.Routes) + len(s.Neigh) + len(s.FDB) }

// kernel reads n's entries; an error if flannel.1 does not exist. The
// routes come from lab.DeviceState with their " dev flannel.1" dropped, the
// form `ip route show dev flannel.1` prints.
func (c *cluster) kernel(ctx context.Context, n *lab.Node) (kernelState, error) {
	st, err := c.DeviceState(ctx, n, lab.FlannelDevice)
	if err != nil {
		return kernelState{}, fmt.Errorf("kernel state of %s: %w", n.Name, err)
	}
	s := kernelState{Neigh: st.Neigh, FDB: st.FDB}
	for _, r := range st.Routes {
		r = strings.Replace(r, " dev "+lab.FlannelDevice, "", 1)
		if dst, err := netip.ParsePrefix(strings.Fields(r)[0]); err == nil && c.Network.Overlaps(dst) {
			s.Routes = append(s.Routes, r)
		}
	}
	s.sort()
	return s, nil
}

func (s *kernelState) sort() {
	slices.Sort(s.Routes)
	slices.Sort(s.Neigh)
	slices.Sort(s.FDB)
}

// wantKernel is what n's kernel must hold for the current well-formed
// vxlan leases in etcd: every lease but n's own, FDB towards PublicIP.
func (c *cluster) wantKernel(ctx context.Context, n *lab.Node) (kernelState, error) {
	leases, err := c.leases(ctx)
	if err != nil {
		return kernelState{}, err
	}
	return expectedEntries(leases, n.Subnet.Lease()), nil
}

// expectedEntries renders the entries for every peer lease but own.
func expectedEntries(leases map[netip.Prefix]peerLease, own netip.Prefix) kernelState {
	var s kernelState
	for sn, l := range leases {
		if sn == own {
			continue
		}
		gw := sn.Addr()
		s.Routes = append(s.Routes, fmt.Sprintf("%s via %s onlink", sn, gw))
		s.Neigh = append(s.Neigh, fmt.Sprintf("%s lladdr %s PERMANENT", gw, l.MAC))
		s.FDB = append(s.FDB, fmt.Sprintf("%s dst %s self permanent", l.MAC, l.PublicIP))
	}
	s.sort()
	return s
}

// diff describes how got differs from want, "" when equal.
func (want kernelState) diff(got kernelState) string {
	var b strings.Builder
	for _, k := range []struct {
		name      string
		want, got []string
	}{{"route", want.Routes, got.Routes}, {"neigh", want.Neigh, got.Neigh}, {"fdb", want.FDB, got.FDB}} {
		missing, extra := multisetDiff(k.want, k.got)
		for _, m := range firstN(missing, 5) {
			fmt.Fprintf(&b, "\n  missing %s: %s", k.name, m)
		}
		for _, e := range firstN(extra, 5) {
			fmt.Fprintf(&b, "\n  unexpected %s: %s", k.name, e)
		}
		if len(missing) > 5 || len(extra) > 5 {
			fmt.Fprintf(&b, "\n  (%s: %d missing, %d unexpected in all)", k.name, len(missing), len(extra))
		}
	}
	return b.String()
}

// multisetDiff returns the lines of want not in got and of got not in
// want, counting repeats (a duplicated entry shows up as unexpected).
func multisetDiff(want, got []string) (missing, extra []string) {
	count := map[string]int{}
	for _, w := range want {
		count[w]++
	}
	for _, g := range got {
		if count[g] > 0 {
			count[g]--
			continue
		}
		extra = append(extra, g)
	}
	for _, w := range want {
		if count[w] > 0 {
			count[w]--
			missing = append(missing, w)
		}
	}
	return missing, extra
}

func firstN(s []string, n int) []string { return s[:min(len(s), n)] }

// converged returns nil once n's kernel matches etcd exactly.
func (c *cluster) converged(n *lab.Node) error {
	ctx := labtest.Context(c.t, 10*time.Second)
	want, err := c.wantKernel(ctx, n)
	if err != nil {
		return err
	}
	got, err := c.kernel(ctx, n)
	if err != nil {
		return err
	}
	if d := want.diff(got); d != "" {
		return fmt.Errorf("%s kernel differs from the leases in etcd:%s", n.Name, d)
	}
	return nil
}

// waitConverged waits until every given node (default all) matches etcd.
func (c *cluster) waitConverged(timeout time.Duration, nodes ...*lab.Node) {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = c.Nodes
	}
	for _, n := range nodes {
		labtest.Eventually(c.t, timeout, n.Name+" converged", func() error { return c.converged(n) })
	}
}

// mustKernel reads n's entries or fails.
func (c *cluster) mustKernel(n *lab.Node) kernelState {
	c.t.Helper()
	s, err := c.kernel(labtest.Context(c.t, 10*time.Second), n)
	if err != nil {
		c.t.Fatalf("kernel state of %s: %v", n.Name, err)
	}
	return s
}

// metrics scrapes n's /metrics: series as exposed ("name{labels}") to
// value.
func metrics(t *testing.T, n *lab.Node) map[string]float64 {
	t.Helper()
	m, err := labtest.Metrics(labtest.Context(t, 5*time.Second), n)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sum adds every series of metric name (all label values).
func sum(m map[string]float64, name string) float64 {
	var total float64
	for series, v := range m {
		if series == name || strings.HasPrefix(series, name+"{") {
			total += v
		}
	}
	return total
}

// status is the sync part of n's /status; zero before the sync starts.
func status(t *testing.T, n *lab.Node) statusdoc.Sync {
	t.Helper()
	doc := labtest.MustStatus(t, n)
	if doc.Sync == nil {
		return statusdoc.Sync{}
	}
	return *doc.Sync
}

// agentLog is a node's agent.log (every agent started on the node
// appends to it).
func agentLog(n *lab.Node) string { return filepath.Join(n.Dir, "agent.log") }

// logMark is the current end of n's log: logSince reads what follows.
func logMark(t *testing.T, n *lab.Node) int64 {
	t.Helper()
	fi, err := os.Stat(agentLog(n))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// logSince returns n's log lines written after mark.
func logSince(t *testing.T, n *lab.Node, mark int64) []string {
	t.Helper()
	f, err := os.Open(agentLog(n))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(mark, 0); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// countContaining counts the lines containing every one of parts.
func countContaining(lines []string, parts ...string) int {
	n := 0
next:
	for _, l := range lines {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		n++
	}
	return n
}
