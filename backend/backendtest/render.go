package backendtest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NeighLines renders the neighbours of a link the way
// `ip neigh show dev <link>` prints them, sorted by address:
// "10.244.37.0 lladdr 56:b3:03:00:ef:bd PERMANENT".
func (k *FakeKernel) NeighLines(linkIndex int) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys := make([]neighKey, 0, len(k.neighs))
	for key := range k.neighs {
		if key.link == linkIndex {
			keys = append(keys, key)
		}
	}
	slices.SortFunc(keys, func(a, b neighKey) int { return a.ip.Compare(b.ip) })
	lines := make([]string, 0, len(keys))
	for _, key := range keys {
		n := k.neighs[key]
		line := key.ip.String()
		if len(n.HardwareAddr) > 0 {
			line += " lladdr " + n.HardwareAddr.String()
		}
		lines = append(lines, line+" "+nudName(n.State))
	}
	return lines
}

// FDBLines renders the FDB entries of a link the way
// `bridge fdb show dev <link>` prints VXLAN entries, sorted by MAC:
// "56:b3:03:00:ef:bd dst 192.0.2.2 self permanent".
func (k *FakeKernel) FDBLines(linkIndex int) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var lines []string
	for key, e := range k.fdb {
		if key.link != linkIndex {
			continue
		}
		for _, r := range e.remotes {
			line := fmt.Sprintf("%s dst %s", e.mac, r.dst)
			if r.vni != 0 {
				line += fmt.Sprintf(" vni %d", r.vni)
			}
			line += " self"
			if r.state&netlink.NUD_PERMANENT != 0 {
				line += " permanent"
			}
			lines = append(lines, line)
		}
	}
	slices.Sort(lines)
	return lines
}

// RouteLines renders the main table the way `ip route` prints it, sorted
// by destination and metric:
// "10.244.37.0/24 via 10.244.37.0 dev flannel.1 onlink".
func (k *FakeKernel) RouteLines() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys := make([]routeKey, 0, len(k.routes))
	for key := range k.routes {
		if key.table == unix.RT_TABLE_MAIN {
			keys = append(keys, key)
		}
	}
	slices.SortFunc(keys, func(a, b routeKey) int {
		return cmp.Or(a.dst.Addr().Compare(b.dst.Addr()), cmp.Compare(a.dst.Bits(), b.dst.Bits()), cmp.Compare(a.priority, b.priority))
	})
	lines := make([]string, 0, len(keys))
	for _, key := range keys {
		lines = append(lines, k.routeLine(key, k.routes[key]))
	}
	return lines
}

func (k *FakeKernel) routeLine(key routeKey, r netlink.Route) string {
	var b strings.Builder
	b.WriteString(key.dst.String())
	if gw := addrOf(r.Gw); gw.IsValid() {
		b.WriteString(" via " + gw.String())
	}
	b.WriteString(" dev " + k.linkName(r.LinkIndex))
	if r.Protocol != unix.RTPROT_BOOT {
		b.WriteString(" proto " + r.Protocol.String())
	}
	if r.Scope != netlink.SCOPE_UNIVERSE {
		b.WriteString(" scope " + r.Scope.String())
	}
	if key.priority != 0 {
		fmt.Fprintf(&b, " metric %d", key.priority)
	}
	if r.Flags&int(netlink.FLAG_ONLINK) != 0 {
		b.WriteString(" onlink")
	}
	return b.String()
}

func (k *FakeKernel) linkName(index int) string {
	if l, ok := k.links[index]; ok {
		return l.Attrs().Name
	}
	return fmt.Sprintf("if%d", index)
}

func nudName(state int) string {
	names := []struct {
		bit  int
		name string
	}{
		{netlink.NUD_INCOMPLETE, "INCOMPLETE"}, {netlink.NUD_REACHABLE, "REACHABLE"},
		{netlink.NUD_STALE, "STALE"}, {netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"},
		{netlink.NUD_FAILED, "FAILED"}, {netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"},
	}
	var out []string
	for _, n := range names {
		if state&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "NONE"
	}
	return strings.Join(out, " ")
}
