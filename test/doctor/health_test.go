package doctor

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/health"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/statusdoc"
)

const healthInterval = 2 * time.Second

// TestHealthProbesSeeBlockedVXLAN: two nodes behind their own NAT
// routers, probing every 2s. A router rule dropping UDP 8472 in front of
// node1 makes node0 mark node1 unreachable over the overlay within two
// intervals while the underlay probe still answers (the log says so, the
// metric counts it, `overlayd status` shows it); removing the rule makes
// it reachable again.
func TestHealthProbesSeeBlockedVXLAN(t *testing.T) {
	c := startCluster(t, lab.Options{Nodes: 2, PodsPerNode: 1, Topology: lab.NAT}, "--health-interval="+healthInterval.String())
	n0, n1 := c.Nodes[0], c.Nodes[1]
	peer := n1.Subnet.Lease().String()
	waitPeer(t, n0, peer, 3*healthInterval+5*time.Second, "reachable", "reachable")

	block := []string{"FORWARD", "-p", "udp", "--dport", "8472", "-j", "DROP"}
	in(t, n1.Router, append([]string{"iptables", "-I"}, block...)...)
	blocked := true
	defer func() {
		if blocked {
			in(t, n1.Router, append([]string{"iptables", "-D"}, block...)...)
		}
	}()
	// Two intervals, plus the probe's own timeout (1s at a 2s interval)
	// and the /status poll: the generous bound the machine's load needs.
	waitPeer(t, n0, peer, 2*healthInterval+3*time.Second, "unreachable", "reachable")
	labtest.Eventually(t, 5*time.Second, "log line", func() error {
		return labtest.LogContains(c.Agent(n0), "peer unreachable", "path=overlay", "peer="+peer, "UDP 8472 (VXLAN) blocked")
	})
	if v := labtest.Metric(t, n0, `overlayd_peers_unreachable{path="overlay"}`); v != 1 {
		t.Errorf(`overlayd_peers_unreachable{path="overlay"} = %v, want 1`, v)
	}
	out, err := netnsutil.Exec(labtest.Context(t, 10*time.Second), n0.NS, overlaydBin, "status")
	if err != nil || !strings.Contains(out, "UNREACHABLE for") {
		t.Errorf("overlayd status (%v) does not show the unreachable peer:\n%s", err, out)
	}

	in(t, n1.Router, append([]string{"iptables", "-D"}, block...)...)
	blocked = false
	waitPeer(t, n0, peer, 2*healthInterval+3*time.Second, "reachable", "reachable")
	labtest.Eventually(t, 5*time.Second, "log line", func() error {
		return labtest.LogContains(c.Agent(n0), "peer reachable again", "path=overlay", "peer="+peer)
	})
}

// waitPeer waits until n's /status shows peer's overlay and underlay in
// the given states.
func waitPeer(t *testing.T, n *lab.Node, peer string, timeout time.Duration, overlay, underlay string) {
	t.Helper()
	labtest.WaitFor(t, timeout, fmt.Sprintf("%s: peer %s overlay %s, underlay %s", n.Name, peer, overlay, underlay), func() (bool, string) {
		doc, err := labtest.Status(labtest.Context(t, 2*time.Second), n)
		if err != nil {
			return false, err.Error()
		}
		ph, ok := findHealth(doc, peer)
		if !ok {
			return false, fmt.Sprintf("no health row for %s: %+v", peer, doc.Health)
		}
		return ph.Overlay.State == overlay && ph.Underlay.State == underlay, fmt.Sprintf("%+v", ph)
	})
}

func findHealth(doc statusdoc.Doc, peer string) (statusdoc.PeerHealth, bool) {
	if doc.Health == nil {
		return statusdoc.PeerHealth{}, false
	}
	for _, p := range doc.Health.Peers {
		if p.Subnet == peer {
			return p, true
		}
	}
	return statusdoc.PeerHealth{}, false
}

// TestHealthPortCoveredByPeerFilter: with --vxlan-peer-filter, the health
// responder answers peers only: a host on the underlay that is no peer
// gets nothing, a peer gets its answer.
func TestHealthPortCoveredByPeerFilter(t *testing.T) {
	c := startCluster(t, lab.Options{Nodes: 2, PodsPerNode: 1}, "--vxlan-peer-filter")
	n0, n1 := c.Nodes[0], c.Nodes[1]
	stranger, err := c.AddHost()
	if err != nil {
		t.Fatal(err)
	}
	dst := netip.AddrPortFrom(n0.UnderlayIP, health.DefaultPort)
	labtest.Eventually(t, 20*time.Second, "peer answered, stranger not", func() error {
		if err := echoFrom(n1.NS, dst); err != nil {
			return fmt.Errorf("peer %s: %w", n1.Name, err)
		}
		if err := echoFrom(stranger.NS, dst); err == nil {
			return fmt.Errorf("stranger %s (%s) got an answer", stranger.Name, stranger.IP)
		}
		return nil
	})
}

func echoFrom(ns string, dst netip.AddrPort) error {
	return netnsutil.Do(ns, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		_, _, err := health.Echo(ctx, netip.Addr{}, dst)
		return err
	})
}
