package iptables

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	goipt "github.com/coreos/go-iptables/iptables"
)

// syncSet makes the set hold exactly the peers. A different content is
// replaced in one step: a temporary set is filled and swapped in.
func (f *PeerFilter) syncSet() error {
	names, err := f.ipset.ListNames()
	if err != nil {
		return fmt.Errorf("peer filter: list sets: %w", err)
	}
	exists := slices.Contains(names, f.set)
	if exists {
		out, err := f.ipset.Save(f.set)
		if err != nil {
			return fmt.Errorf("peer filter: read set %s: %w", f.set, err)
		}
		members, err := savedMembers(out, f.set)
		if err != nil {
			return fmt.Errorf("peer filter: %w", err)
		}
		if slices.Equal(sortedUnique(members), f.peers) {
			return nil
		}
	}
	script := f.swapScript(exists, slices.Contains(names, f.tmpSet))
	if err := f.ipset.Restore(script); err != nil {
		return fmt.Errorf("peer filter: replace set %s with %d peers: %w", f.set, len(f.peers), err)
	}
	f.metrics.SetChanges.Inc()
	f.log.Info("vxlan peer set replaced", "set", f.set, "peers", len(f.peers))
	return nil
}

// swapScript fills a fresh temporary set with the peers and swaps it with
// the live one, so the live set goes from old to new content atomically.
func (f *PeerFilter) swapScript(setExists, tmpExists bool) string {
	var b strings.Builder
	if tmpExists {
		fmt.Fprintf(&b, "destroy %s\n", f.tmpSet)
	}
	if !setExists {
		fmt.Fprintf(&b, "create %s hash:ip family %s\n", f.set, f.family)
	}
	fmt.Fprintf(&b, "create %s hash:ip family %s maxelem %d\n", f.tmpSet, f.family, max(minSetMaxElem, 2*len(f.peers)))
	for _, p := range f.peers {
		fmt.Fprintf(&b, "add %s %s\n", f.tmpSet, p)
	}
	fmt.Fprintf(&b, "swap %s %s\n", f.tmpSet, f.set)
	fmt.Fprintf(&b, "destroy %s\n", f.tmpSet)
	return b.String()
}

func (f *PeerFilter) normalizePeers(addrs []netip.Addr) []netip.Addr {
	keep := make([]netip.Addr, 0, len(addrs))
	var skipped []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if !a.IsValid() || protoOfAddr(a) != f.runner.Proto() {
			skipped = append(skipped, a)
			continue
		}
		keep = append(keep, a.WithZone(""))
	}
	if len(skipped) > 0 {
		f.log.Warn("vxlan peer filter: skipping addresses of another family", "set", f.set, "first", skipped[0], "count", len(skipped))
	}
	return sortedUnique(keep)
}

// peerSet returns the set name and ipset family for a runner's family.
func peerSet(p goipt.Protocol) (name, family string) {
	if p == goipt.ProtocolIPv6 {
		return PeerSetName + "6", "inet6"
	}
	return PeerSetName, "inet"
}

func sortedUnique(addrs []netip.Addr) []netip.Addr {
	out := slices.Clone(addrs)
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}
