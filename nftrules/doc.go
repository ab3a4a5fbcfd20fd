// Package nftrules is overlayd's nftables mode (the network config's
// EnableNFTables): the masquerade and forward policy, the VXLAN peer filter
// and the raw-table exemption of outer VXLAN packets, programmed in
// nftables tables through netlink (github.com/google/nftables: no nft
// binary, no cgo), with the same semantics as package iptables.
//
// The masquerade and forward chains live in table ip flannel-ipv4 with the
// table, chain and rule shape flanneld v0.28 creates in the same mode
// (docs/compatibility.md, "nftables mode"), so a node switches between
// flanneld and overlayd without duplicates. What only overlayd has (the peer
// filter's set and chain, the notrack chain) lives in table ip overlayd-ipv4.
// IPv6 is a second family of the same shape (flannel-ipv6, overlayd-ipv6):
// a Manager and a PeerFilter per family, the family taken from the
// addresses; the daemon programs IPv4 only so far.
//
// Every change is one netlink transaction: a chain is repaired by flushing
// and refilling it inside one batch, which the kernel commits atomically, so
// packets never see it half built. All kernel access goes through Kernel;
// NewNetlinkKernel talks to the real one, tests use a stateful fake.
package nftrules
