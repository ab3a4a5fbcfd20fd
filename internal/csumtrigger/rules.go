// Package csumtrigger rebuilds, in one lab node, the condition under which
// VXLAN with tx checksum offload used to corrupt packets, drives TCP and
// UDP through it and collects the evidence (checksum error counters, what
// tcpdump says of the outer packets, stalled or failed connections).
//
// The condition (docs/public-cloud.md, "Checksum offload"): kube-proxy
// before Kubernetes 1.19 marked node-to-Service traffic with 0x4000
// (KUBE-MARK-MASQ) and masqueraded every marked packet with --random-fully
// (KUBE-POSTROUTING) without clearing the mark first. The mark survives
// VXLAN encapsulation, so the outer UDP packet is masqueraded a second
// time, with a new source port; a kernel without the netfilter fix then
// rewrote its zero UDP checksum into a wrong one.
//
// Install writes those rules, in kube-proxy's pre-1.19 shape, into the nat
// table of a namespace the lab created; nothing else is touched.
package csumtrigger

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// Service is a ClusterIP-like address and the pod behind it, for TCP and
// UDP on the same ports.
type Service struct {
	VIP     netip.AddrPort // the virtual address clients dial
	Backend netip.AddrPort // the pod address it is DNATed to
	// NoMasquerade leaves out the mark and the masquerade (a control run):
	// the masquerade counter then stays at 0.
	NoMasquerade bool
}

// masqMark is kube-proxy's KUBE-MARK-MASQ bit.
const masqMark = "0x4000/0x4000"

// Rules is the iptables-restore input for the nat table: pre-1.19
// kube-proxy's mark-then-masquerade, with no "unmark before masquerade".
func Rules(svc Service) string {
	vip, port := svc.VIP.Addr(), svc.VIP.Port()
	to := svc.Backend.String()
	var b strings.Builder
	fmt.Fprintln(&b, "*nat")
	for _, c := range []string{"KUBE-SERVICES", "KUBE-MARK-MASQ", "KUBE-POSTROUTING"} {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	fmt.Fprintln(&b, "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES")
	fmt.Fprintln(&b, "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES")
	fmt.Fprintln(&b, "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING")
	fmt.Fprintf(&b, "-A KUBE-MARK-MASQ -j MARK --set-xmark %s\n", masqMark)
	fmt.Fprintf(&b, "-A KUBE-POSTROUTING -m mark --mark %s -j MASQUERADE --random-fully\n", masqMark)
	for _, proto := range []string{"tcp", "udp"} {
		if !svc.NoMasquerade {
			fmt.Fprintf(&b, "-A KUBE-SERVICES -d %s/32 -p %s -m %s --dport %d -j KUBE-MARK-MASQ\n", vip, proto, proto, port)
		}
		fmt.Fprintf(&b, "-A KUBE-SERVICES -d %s/32 -p %s -m %s --dport %d -j DNAT --to-destination %s\n", vip, proto, proto, port, to)
	}
	fmt.Fprintln(&b, "COMMIT")
	return b.String()
}

// Install adds the rules to ns's nat table (iptables-restore --noflush:
// the agent's own FLANNEL-* rules stay).
func Install(ctx context.Context, ns string, svc Service) error {
	cmd := netnsutil.Command(ctx, ns, "iptables-restore", "--noflush")
	cmd.Stdin = strings.NewReader(Rules(svc))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("install kube-proxy-style rules in %s: %w: %s", ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// MasqueradedPackets reads the KUBE-POSTROUTING masquerade rule's packet
// counter: NAT rules see the first packet of each connection, so 2 per
// TCP connection means the outer VXLAN flow was masqueraded too.
func MasqueradedPackets(ctx context.Context, ns string) (uint64, error) {
	out, err := netnsutil.Exec(ctx, ns, "iptables", "-w", "-t", "nat", "-L", "KUBE-POSTROUTING", "-n", "-v", "-x")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "MASQUERADE" {
			var n uint64
			if _, err := fmt.Sscan(f[0], &n); err != nil {
				return 0, fmt.Errorf("KUBE-POSTROUTING counter %q: %w", f[0], err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("no MASQUERADE rule in KUBE-POSTROUTING of %s:\n%s", ns, out)
}

// HaveTools reports the first missing binary the evidence needs.
func HaveTools() error {
	for _, b := range []string{"iptables-restore", "iptables", "tcpdump"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
	}
	return nil
}
