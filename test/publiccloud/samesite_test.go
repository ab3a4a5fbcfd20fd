package publiccloud

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TestSameSitePeersUsePrivateAddresses: node0 (198.51.100.2) and node1
// (198.51.100.3) share a VPC; node2 sits in another VPC behind its own NAT
// with the same private address as node0. Every pair carries traffic;
// node0 and node1 send each other's VXLAN to the private address (a
// capture shows it on the wire); everything to or from node2 uses public
// addresses, although node2's private address is inside node1's subnet
// and answers probes there (it is node0 answering, and is rejected).
func TestSameSitePeersUsePrivateAddresses(t *testing.T) {
	l := startCluster(t, lab.Options{Nodes: 3, PodsPerNode: 1, Topology: lab.NAT, SameSite: [][]int{{0, 1}}})
	n0, n1, n2 := l.Nodes[0], l.Nodes[1], l.Nodes[2]
	if n0.UnderlayIP.String() != "198.51.100.2" || n1.UnderlayIP.String() != "198.51.100.3" || n2.UnderlayIP.String() != "198.51.100.2" {
		t.Fatalf("private addresses %s %s %s: the lab's SameSite layout changed", n0.UnderlayIP, n1.UnderlayIP, n2.UnderlayIP)
	}
	ctx := labtest.Context(t, 40*time.Second)
	want := map[[2]*lab.Node]string{
		{n0, n1}: n1.UnderlayIP.String(), {n1, n0}: n0.UnderlayIP.String(),
		{n0, n2}: n2.PublicIP.String(), {n2, n0}: n0.PublicIP.String(),
		{n1, n2}: n2.PublicIP.String(), {n2, n1}: n1.PublicIP.String(),
	}
	macs := map[*lab.Node]string{}
	for _, n := range l.Nodes {
		macs[n] = labtest.VtepMAC(t, ctx, l, n)
	}
	labtest.WaitFor(t, convergeTimeout, "same-site verified and the impostor rejected", func() (bool, string) {
		rejected, err := labtest.MetricValue(ctx, n1, `overlayd_samesite_answers_received_total{result="wrong_identity"}`)
		ok := err == nil && rejected >= 1
		state := fmt.Sprintf("node1 wrong_identity answers: %v (%v)\n", rejected, err)
		for pair, dst := range want {
			got := fdbDsts(t, ctx, pair[0])[macs[pair[1]]]
			ok = ok && got == dst
			state += fmt.Sprintf("%s -> %s: FDB dst %s, want %s\n", pair[0].Name, pair[1].Name, got, dst)
		}
		return ok, state
	})
	pingAll(t, l)
	checkStatusDst(t, ctx, n0, n1)
	// After the rejection node1 still sends node2's VXLAN to the public
	// address: the impostor at 198.51.100.2 did not win it over.
	if got := fdbDsts(t, ctx, n1)[macs[n2]]; got != n2.PublicIP.String() {
		t.Errorf("node1 sends node2's VXLAN to %s, want %s", got, n2.PublicIP)
	}
	captureSameSiteVXLAN(t, l, n0, n1)
}

// checkStatusDst: /status shows the reconciler's destination for from's
// peer to.
func checkStatusDst(t *testing.T, ctx context.Context, from, to *lab.Node) {
	t.Helper()
	st := getStatus(t, ctx, from)
	if st.Sync == nil {
		t.Fatalf("%s /status has no sync section", from.Name)
	}
	for _, p := range st.Sync.Peers {
		if p.Subnet == to.Subnet.Lease().String() {
			if p.Dst != to.UnderlayIP.String() || p.PublicIP != to.PublicIP.String() {
				t.Errorf("%s /status peer %s: dst %s publicIP %s, want %s and %s", from.Name, to.Name, p.Dst, p.PublicIP, to.UnderlayIP, to.PublicIP)
			}
			return
		}
	}
	t.Errorf("%s /status lists no peer %s: %+v", from.Name, to.Subnet.Lease(), st.Sync.Peers)
}

// captureSameSiteVXLAN captures VXLAN on from's underlay while from's pod
// pings to's pod: every packet goes between the two private addresses,
// none to a NAT address.
func captureSameSiteVXLAN(t *testing.T, l *lab.Lab, from, to *lab.Node) {
	t.Helper()
	const packets = 4
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := netnsutil.Command(ctx, from.NS, "tcpdump", "-i", from.Iface, "-nn", "-q", "-l", "-c", fmt.Sprint(packets), "udp", "port", "8472")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("tcpdump in %s: %v", from.Name, err)
	}
	defer cmd.Wait()
	defer cancel()
	waitListening(t, stderr)
	go func() {
		for i := 0; i < 2*packets && ctx.Err() == nil; i++ {
			l.Ping(ctx, from.Pods[0], to.Pods[0].IP)
		}
	}()
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < packets {
		t.Fatalf("captured %d VXLAN packets on %s, want %d:\n%s", len(lines), from.Name, packets, strings.Join(lines, "\n"))
	}
	// tcpdump -q prints one line per packet:
	// "... IP 198.51.100.2.41791 > 198.51.100.3.8472: UDP, length 106".
	out := fmt.Sprintf("IP %s.", from.UnderlayIP)
	toPrivate := fmt.Sprintf(" > %s.8472: UDP", to.UnderlayIP)
	back := fmt.Sprintf("IP %s.", to.UnderlayIP)
	toUs := fmt.Sprintf(" > %s.8472: UDP", from.UnderlayIP)
	sent := 0
	for _, line := range lines {
		switch {
		case strings.Contains(line, out) && strings.Contains(line, toPrivate):
			sent++
		case strings.Contains(line, back) && strings.Contains(line, toUs):
		default:
			t.Errorf("VXLAN packet not between the private addresses: %s", line)
		}
	}
	if sent == 0 {
		t.Errorf("no VXLAN packet from %s to %s's private address:\n%s", from.Name, to.Name, strings.Join(lines, "\n"))
	}
	t.Logf("capture on %s:\n%s", from.Name, strings.Join(lines, "\n"))
}

// waitListening reads tcpdump's stderr until it says it is listening,
// then drains the rest in the background.
func waitListening(t *testing.T, stderr io.Reader) {
	t.Helper()
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "listening on") {
			go func() {
				for sc.Scan() {
				}
			}()
			return
		}
	}
	t.Fatal("tcpdump exited before listening")
}
