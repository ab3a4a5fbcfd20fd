package nftrules

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Table and chain names. flannel-ipv4 and its chains are flanneld v0.28's
// (docs/compatibility.md, "nftables mode"); overlayd-ipv4 holds what only
// overlayd has. The IPv6 tables are flannel-ipv6 and overlayd-ipv6.
const (
	FlannelTable4  = "flannel-ipv4"
	FlannelTable6  = "flannel-ipv6"
	OverlaydTable4 = "overlayd-ipv4"
	OverlaydTable6 = "overlayd-ipv6"

	MasqChain    = "postrtg"
	ForwardChain = "forward"
	PeerChain    = "vxlan-peer-filter"
	PeerSet      = "vxlan-peers"
	NoTrackChain = "vxlan-notrack"

	// kubeMasqMark is kube-proxy's masquerade mark: such packets are
	// kube-proxy's to masquerade, not ours.
	kubeMasqMark = 0x4000
)

// ChainSpec is a base chain we want, with its rules in order.
type ChainSpec struct {
	Name  string
	Base  BaseChain
	Rules []Rule
}

// SetSpec is an address set we want, with its elements.
type SetSpec struct {
	Name     string
	Elements []netip.Addr // sorted, unique
}

// TableSpec is the part of a table one owner keeps in place. With
// Exclusive, chains of the table not listed are deleted.
type TableSpec struct {
	Ref
	Chains    []ChainSpec
	Sets      []SetSpec
	Exclusive bool
}

var (
	natPostrouting = BaseChain{Type: nftables.ChainTypeNAT, Hook: *nftables.ChainHookPostrouting, Priority: *nftables.ChainPriorityNATSource, Policy: nftables.ChainPolicyAccept}
	filterForward  = BaseChain{Type: nftables.ChainTypeFilter, Hook: *nftables.ChainHookForward, Priority: *nftables.ChainPriorityFilter, Policy: nftables.ChainPolicyAccept}
	filterInput    = BaseChain{Type: nftables.ChainTypeFilter, Hook: *nftables.ChainHookInput, Priority: *nftables.ChainPriorityFilter, Policy: nftables.ChainPolicyAccept}
	rawOutput      = BaseChain{Type: nftables.ChainTypeFilter, Hook: *nftables.ChainHookOutput, Priority: *nftables.ChainPriorityRaw, Policy: nftables.ChainPolicyAccept}
)

// MasqRules returns the rules of postrtg, in order: pod-to-pod traffic
// keeps its source address, traffic leaving the cluster network is
// masqueraded, multicast is left alone. The same six rules as iptables'
// FLANNEL-POSTRTG and flanneld's postrtg. network and pod are of one
// family, which decides the table's.
func MasqRules(network, pod netip.Prefix, fullyRandom bool) []Rule {
	f := familyOf(network.Addr())
	src, dst := f.src, f.dst
	ret, masq := []expr.Any{verdict(expr.VerdictReturn)}, []expr.Any{masquerade(fullyRandom)}
	mcast := f.multicast
	return []Rule{
		join(matchMarkBits(kubeMasqMark), ret),
		join(src(pod, false), dst(network, false), ret),
		join(src(network, false), dst(pod, false), ret),
		join(src(pod, true), dst(network, false), ret),
		join(src(network, false), dst(mcast, true), masq),
		join(src(network, true), dst(network, false), masq),
	}
}

// ForwardRules returns the rules of forward: accept anything from or to the
// cluster network, whatever the other forward chains decide to accept.
func ForwardRules(network netip.Prefix) []Rule {
	f := familyOf(network.Addr())
	accept := []expr.Any{verdict(expr.VerdictAccept)}
	return []Rule{
		join(f.src(network, false), accept),
		join(f.dst(network, false), accept),
	}
}

// PeerFilterRules returns the rule of vxlan-peer-filter: UDP to the VXLAN
// port from an address not in the peer set is dropped.
func PeerFilterRules(port uint16, v6 bool) []Rule {
	f := ipv4
	if v6 {
		f = ipv6
	}
	return []Rule{join(matchUDPDport(port), f.srcNotInSet(PeerSet), []expr.Any{verdict(expr.VerdictDrop)})}
}

// NoTrackRules returns the rule of vxlan-notrack: VXLAN this node sends from
// bind to the port skips connection tracking, and so every NAT rule
// (docs/public-cloud.md, "Checksum offload").
func NoTrackRules(bind netip.AddrPort) []Rule {
	f := familyOf(bind.Addr())
	src := netip.PrefixFrom(bind.Addr(), bind.Addr().BitLen())
	return []Rule{join(f.src(src, false), matchUDPDport(bind.Port()), []expr.Any{&expr.Notrack{}})}
}

func ref4(table string) Ref { return ipv4.ref(table) }
