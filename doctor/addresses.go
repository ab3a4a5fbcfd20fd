package doctor

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

const groupAddresses = "addresses"

// checkAddresses: the advertised address against the bound one (NAT, and
// what peers actually see), a PublicIP shared with another lease, and
// peers advertising addresses nobody can reach.
func checkAddresses(ctx context.Context, e *Env, f *facts, r *Report) {
	r.add(checkAdvertised(ctx, e, f))
	r.add(checkSharedPublicIP(f))
	r.add(checkPeerAddresses(e, f))
}

func checkAdvertised(ctx context.Context, e *Env, f *facts) Result {
	res := Result{Group: groupAddresses, Check: "advertised address"}
	if !f.advertise.IsValid() {
		res.Status, res.Detail = Skip, "the advertised address is unknown (no daemon, no lease found)"
		return res
	}
	onHost := f.ifaceOf(f.advertise) != ""
	what := fmt.Sprintf("bind %s, advertise %s", f.bind, f.advertise)
	switch {
	case f.advertise == f.bind || !f.bind.IsValid():
		what = "advertise " + f.advertise.String() + " (the bound address)"
	case onHost:
		what += " (on this host)"
	default:
		what += " (on no interface: 1:1 NAT assumed)"
	}
	seen, by := f.seenAs(ctx, e)
	switch {
	case !seen.IsValid():
		res.Status, res.Detail = OK, what+"; no peer's probe port answered, so what peers see was not verified"
	case seen != f.advertise:
		res.Status = Fail
		res.Detail = fmt.Sprintf("%s, but %s sees this node as %s: peers send VXLAN to an address that does not reach it", what, by, seen)
		res.Fix = fmt.Sprintf("run overlayd with --public-ip=%s (or fix the NAT mapping)", seen)
	case seen != f.bind && f.bind.IsValid():
		res.Status, res.Detail = OK, fmt.Sprintf("%s; NAT detected: %s sees this node as %s, as advertised", what, by, seen)
	default:
		res.Status, res.Detail = OK, fmt.Sprintf("%s; %s sees this node as %s", what, by, seen)
	}
	return res
}

// seenAs is the source address a peer's responder saw our probe come
// from (the first peer that answered), and that peer's description.
func (f *facts) seenAs(ctx context.Context, e *Env) (netip.Addr, string) {
	for _, p := range f.probe(ctx, e) {
		if p.underlayErr == nil && p.seen.IsValid() {
			return p.seen.Addr(), fmt.Sprintf("peer %s (%s)", p.lease.Subnet, p.lease.Attrs.PublicIP)
		}
	}
	return netip.Addr{}, ""
}

func checkSharedPublicIP(f *facts) Result {
	res := Result{Group: groupAddresses, Check: "public IP unique"}
	if !f.advertise.IsValid() || f.leaseErr != nil {
		res.Status, res.Detail = Skip, "the leases or our address are unknown"
		return res
	}
	var others []string
	for _, l := range f.leases {
		if l.Subnet != f.own && l.Attrs.PublicIP == f.advertise {
			others = append(others, l.Subnet.String())
		}
	}
	if len(others) > 0 {
		res.Status = Fail
		res.Detail = fmt.Sprintf("lease(s) %s also advertise %s: peers send both subnets' VXLAN here, and one of them is unreachable", strings.Join(others, ", "), f.advertise)
		res.Fix = "give each node its own --public-ip; delete a stale lease of this node: etcdctl del <prefix>/subnets/" + strings.ReplaceAll(others[0], "/", "-")
		return res
	}
	res.Status, res.Detail = OK, fmt.Sprintf("no other lease advertises %s", f.advertise)
	return res
}

// checkPeerAddresses: a peer advertising loopback, link-local, multicast
// or unspecified is unreachable from anywhere; a private address is
// unreachable from a node on a public address; and an address without a
// route from here is unreachable from here.
func checkPeerAddresses(e *Env, f *facts) Result {
	res := Result{Group: groupAddresses, Check: "peer addresses"}
	if f.leaseErr != nil {
		res.Status, res.Detail = Skip, "the leases are unknown"
		return res
	}
	var bad, odd []string
	for _, l := range f.peers() {
		a := l.Attrs.PublicIP
		switch {
		case !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast():
			bad = append(bad, fmt.Sprintf("%s advertises %s", l.Subnet, a))
		case a.IsPrivate() && f.advertise.IsValid() && !f.advertise.IsPrivate() && !l.Attrs.PrivateIP.IsValid():
			odd = append(odd, fmt.Sprintf("%s advertises private %s", l.Subnet, a))
		case e.Net != nil:
			if _, err := e.Net.RouteTo(a); err != nil {
				bad = append(bad, fmt.Sprintf("%s advertises %s, which has no route from here (%v)", l.Subnet, a, err))
			}
		}
	}
	switch {
	case len(bad) > 0:
		res.Status, res.Detail = Fail, strings.Join(limit(bad, 3), "; ")
		res.Fix = "run those nodes with --public-ip set to an address the other nodes can reach"
	case len(odd) > 0:
		res.Status, res.Detail = Warn, strings.Join(limit(odd, 3), "; ")+" while this node advertises a public address"
		res.Fix = "run those nodes with --public-ip set to their public (NAT) address"
	default:
		res.Status, res.Detail = OK, fmt.Sprintf("%d peers advertise routable addresses", len(f.peers()))
	}
	return res
}

func limit(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
}
