package doctor

import (
	"context"
	"fmt"
	"strings"
)

const groupIPTables = "iptables"

// checkIPTables: the FORWARD policy against FLANNEL-FWD, the legacy/nft
// backend against kube-proxy's, and masquerade rules that would hit the
// outer VXLAN packet.
func checkIPTables(_ context.Context, e *Env, f *facts, r *Report) {
	if e.IPT == nil {
		r.add(Result{Group: groupIPTables, Check: "forward", Status: Skip, Detail: "iptables is not available here"})
		return
	}
	if f.cfg != nil && f.cfg.EnableNFTables {
		r.add(Result{Group: groupIPTables, Check: "forward", Status: Skip,
			Detail: "nftables mode (EnableNFTables): overlayd's rules are nftables tables (docs/nftables.md), not checked by this version"})
		r.add(checkBackend(e))
		return
	}
	r.add(checkForward(e, f))
	r.add(checkBackend(e))
	r.add(checkOuterMasquerade(e))
}

const flannelFwd = "FLANNEL-FWD"

func checkForward(e *Env, f *facts) Result {
	res := Result{Group: groupIPTables, Check: "forward"}
	lines, err := e.IPT.List("filter", "FORWARD")
	if err != nil {
		res.Status, res.Detail = Warn, fmt.Sprintf("cannot list filter FORWARD: %v", err)
		return res
	}
	policy, ours, blockedBy := forwardVerdict(lines, f.network().String())
	if blockedBy != "" {
		res.Status, res.Detail = Fail, fmt.Sprintf("%q comes before any rule accepting pod traffic: forwarded pod packets are dropped", blockedBy)
		res.Fix = "delete that rule or put FLANNEL-FWD before it: iptables -I FORWARD 1 -j FLANNEL-FWD"
		return res
	}
	switch {
	case ours:
		res.Status, res.Detail = OK, fmt.Sprintf("policy %s; FLANNEL-FWD accepts the pod network", policy)
	case policy == "ACCEPT":
		res.Status, res.Detail = OK, "policy ACCEPT (no FLANNEL-FWD needed)"
	default:
		res.Status = Fail
		res.Detail = fmt.Sprintf("policy %s (Docker sets DROP) and no rule accepts the pod network: pods on other nodes are unreachable", policy)
		res.Fix = "run overlayd with --iptables-forward-rules (the default), or: iptables -A FORWARD -s <network> -j ACCEPT; iptables -A FORWARD -d <network> -j ACCEPT"
	}
	return res
}

// forwardVerdict reads `iptables -S FORWARD`: the policy, whether a jump
// to FLANNEL-FWD (or flannel v0.11's ACCEPT rules for network) comes
// first, and otherwise the unconditional DROP/REJECT that comes first.
func forwardVerdict(lines []string, network string) (policy string, ours bool, blockedBy string) {
	policy = "ACCEPT"
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == "-P" {
			policy = f[2]
			continue
		}
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		if hasArg(f, "-j", flannelFwd) || (hasArg(f, "-j", "ACCEPT") && (hasArg(f, "-s", network) || hasArg(f, "-d", network))) {
			return policy, true, ""
		}
		if (hasArg(f, "-j", "DROP") || hasArg(f, "-j", "REJECT")) && len(f) <= 6 && !strings.Contains(l, " -s ") && !strings.Contains(l, " -d ") && !strings.Contains(l, " -i ") && !strings.Contains(l, " -o ") && !strings.Contains(l, " -m ") {
			return policy, false, l
		}
	}
	return policy, false, ""
}

func hasArg(f []string, flag, val string) bool {
	for i := 0; i+1 < len(f); i++ {
		if f[i] == flag && f[i+1] == val {
			return true
		}
	}
	return false
}

// checkBackend: kube-proxy and overlayd must write the same iptables
// backend, or each one's rules are invisible to the other's tool (and
// both apply, in an order nobody chose).
func checkBackend(e *Env) Result {
	res := Result{Group: groupIPTables, Check: "backend"}
	if e.Backends == nil {
		res.Status, res.Detail = Skip, "cannot read the legacy and nft backends separately here"
		return res
	}
	inUse, err := e.Backends.InUse()
	if err != nil {
		res.Status, res.Detail = Warn, fmt.Sprintf("cannot tell which backend iptables uses: %v", err)
		return res
	}
	kube := map[string]bool{}
	for _, b := range []string{"legacy", "nft"} {
		out, ok, err := e.Backends.Save(b)
		if ok && err == nil && strings.Contains(out, ":KUBE-") {
			kube[b] = true
		}
	}
	other := map[string]string{"legacy": "nft", "nft": "legacy"}[inUse]
	switch {
	case kube[other] && !kube[inUse]:
		res.Status = Fail
		res.Detail = fmt.Sprintf("kube-proxy's rules are in iptables-%s, overlayd's iptables is %s: the two rule sets do not see each other", other, inUse)
		res.Fix = fmt.Sprintf("use the same backend for both: update-alternatives --set iptables /usr/sbin/iptables-%s (and restart overlayd)", other)
	case kube[other] && kube[inUse]:
		res.Status, res.Detail = Warn, "kube-proxy's chains exist in both the legacy and the nft backend: one set is stale"
		res.Fix = "flush the stale backend's KUBE-* chains (iptables-" + other + "-save shows them)"
	default:
		res.Status, res.Detail = OK, "iptables uses the "+inUse+" backend; no kube-proxy rules in the other one"
	}
	return res
}

// checkOuterMasquerade: overlayd exempts the outer VXLAN packets from NAT
// (raw OUTPUT -> OVERLAYD-NOTRACK); without it, a broad masquerade rule
// can rewrite their source port and break the checksum.
func checkOuterMasquerade(e *Env) Result {
	res := Result{Group: groupIPTables, Check: "outer VXLAN NAT"}
	raw, _ := e.IPT.List("raw", "OUTPUT")
	for _, l := range raw {
		if strings.Contains(l, "-j OVERLAYD-NOTRACK") {
			res.Status, res.Detail = OK, "outer VXLAN packets are exempt from NAT (raw OUTPUT -> OVERLAYD-NOTRACK)"
			return res
		}
	}
	var broad []string
	for _, chain := range []string{"POSTROUTING", "KUBE-POSTROUTING"} {
		lines, err := e.IPT.List("nat", chain)
		if err != nil {
			continue
		}
		for _, l := range lines {
			if (strings.Contains(l, "-j MASQUERADE") || strings.Contains(l, "-j SNAT")) && !strings.Contains(l, " -s ") && !strings.Contains(l, " -o ") {
				broad = append(broad, l)
			}
		}
	}
	if len(broad) == 0 {
		res.Status, res.Detail = OK, "no masquerade rule matches the node's own UDP to peers"
		return res
	}
	res.Status = Warn
	res.Detail = fmt.Sprintf("no NAT exemption for outer VXLAN, and %q can masquerade it (broken outer checksums with tx offload)", broad[0])
	res.Fix = "run overlayd with --tx-checksum-offload=auto (installs the exemption), or restrict the rule with -s"
	return res
}
