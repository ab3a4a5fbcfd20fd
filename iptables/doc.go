// Package iptables keeps overlayd's packet-filter state in place: the
// flannel-compatible masquerade chain (nat FLANNEL-POSTRTG) and forward chain
// (filter FLANNEL-FWD), checked and repaired on a timer, and the opt-in VXLAN
// peer filter (an ipset of peer addresses and the filter chain OVERLAYD-VXLAN).
//
// Chains and comments are the ones flanneld uses, so a node can switch from
// flanneld to overlayd and back without duplicate rules. flannel v0.11's rules,
// written straight into POSTROUTING and FORWARD, are removed so that they do
// not live on next to the chains. Nothing is removed on exit: a restart must
// not interrupt traffic.
//
// All writes go through Runner, an interface that *iptables.IPTables from
// github.com/coreos/go-iptables satisfies as it is, and IPSetRunner, a thin
// wrapper around the ipset binary; tests replace both with stateful fakes.
package iptables
