package iptables

import (
	"fmt"
	"net/netip"
	"strconv"
)

// The outer VXLAN packets this node sends are exempt from connection
// tracking, and so from every NAT rule on the node (docs/public-cloud.md,
// "Checksum offload"). The encapsulated packet keeps the inner packet's
// firewall mark; kube-proxy before 1.19 masqueraded every packet with its
// mark, the outer one included, and rewriting the outer source port of a
// packet whose inner checksum is left to the hardware (tx checksum offload)
// corrupts the outer UDP checksum: the peer drops the packet, and TCP
// stalls until a retransmission. Measured in bench/csumtrigger on 6.18.
// Untracked packets skip the nat table, whatever marks or masquerade rules
// the node has, and VXLAN to a peer never needs NAT on the sending node
// (1:1 NAT routers in front of the node are not affected).
const (
	rawTable      = "raw"
	outputChain   = "OUTPUT"
	NoTrackChain  = "OVERLAYD-NOTRACK"
	noTrackNote   = "overlayd: outer VXLAN never NATed"
	noTrackTarget = "CT"
)

// NoTrackRules returns the rules of OVERLAYD-NOTRACK for VXLAN sent from
// bind to the port (peers' VXLAN port, the same on every node).
func NoTrackRules(bind netip.AddrPort) []Rule {
	src := netip.PrefixFrom(bind.Addr(), bind.Addr().BitLen()).String()
	match := []string{"-s", src, "-p", "udp", "-m", "udp", "--dport", strconv.Itoa(int(bind.Port()))}
	return []Rule{commented(rawTable, NoTrackChain, match, noTrackNote, []string{"-j", noTrackTarget, "--notrack"})}
}

func noTrackJump() Rule {
	return commented(rawTable, outputChain, nil, noTrackNote, []string{"-j", NoTrackChain})
}

func noTrackSet(bind netip.AddrPort) ruleSet {
	return ruleSet{table: rawTable, parent: outputChain, chain: NoTrackChain, jump: noTrackJump(), rules: NoTrackRules(bind)}
}

// RemoveVXLANNoTrack removes the jumps to OVERLAYD-NOTRACK and the chain,
// whichever are present (the exemption is off).
func RemoveVXLANNoTrack(r Runner) error {
	if err := removeChainAndJumps(r, rawTable, outputChain, NoTrackChain); err != nil {
		return fmt.Errorf("remove VXLAN notrack: %w", err)
	}
	return nil
}
