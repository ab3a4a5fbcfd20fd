package lab

import (
	"fmt"
	"net/netip"
)

// Addresses of the two layouts (all TEST-NET, see RFC 5737).
var (
	flatHubIP       = netip.MustParseAddr("192.0.2.254")
	flatHubIP6      = netip.MustParseAddr("2001:db8:ff::fe")
	natHubIP        = netip.MustParseAddr("203.0.113.254")
	natRouterInside = netip.MustParseAddr("198.51.100.1")
)

const (
	underlayBits  = 24
	underlayBits6 = 64
	underlayMTU   = 1500
	etcdPort      = 2379
	// firstNodeHost is node 0's host number on the flat underlay and on
	// the NAT public segment; node i uses firstNodeHost+i.
	firstNodeHost = 10
	// firstPrivateHost is the first node's host number inside a NAT site.
	firstPrivateHost = 2
)

// nodePlan is where one node sits in the underlay.
type nodePlan struct {
	index    int
	site     int // index into the site list; -1 on the flat underlay
	underlay netip.Addr
	gateway  netip.Addr
	public   netip.Addr
	// underlay6 is the node's IPv6 underlay address (Options.Underlay6).
	underlay6 netip.Addr
}

// planNodes assigns addresses; for NAT it also groups nodes into sites
// (each a list of node indexes behind one router).
func planNodes(opts Options) ([]nodePlan, [][]int, error) {
	if opts.Topology == Flat {
		plans := planFlat(opts.Nodes)
		if opts.Underlay6 {
			for i := range plans {
				plans[i].underlay6 = hostAddr6(flatHubIP6, firstNodeHost+i)
			}
		}
		return plans, nil, nil
	}
	sites, err := planSites(opts.Nodes, opts.SameSite)
	if err != nil {
		return nil, nil, err
	}
	plans := make([]nodePlan, opts.Nodes)
	for s, members := range sites {
		for k, i := range members {
			plans[i] = nodePlan{
				index:    i,
				site:     s,
				underlay: hostAddr(natRouterInside, firstPrivateHost+k),
				gateway:  natRouterInside,
				public:   hostAddr(natHubIP, firstNodeHost+i),
			}
		}
	}
	return plans, sites, nil
}

func planFlat(nodes int) []nodePlan {
	plans := make([]nodePlan, nodes)
	for i := range plans {
		ip := hostAddr(flatHubIP, firstNodeHost+i)
		plans[i] = nodePlan{index: i, site: -1, underlay: ip, gateway: flatHubIP, public: ip}
	}
	return plans
}

// planSites orders sites by their first node: a SameSite group becomes one
// site (members in the order given), every other node a site of its own.
func planSites(nodes int, groups [][]int) ([][]int, error) {
	groupOf := make(map[int]int)
	for g, members := range groups {
		if len(members) == 0 {
			return nil, fmt.Errorf("lab options: SameSite[%d] is empty", g)
		}
		for _, i := range members {
			if i < 0 || i >= nodes {
				return nil, fmt.Errorf("lab options: SameSite[%d] names node %d, want 0..%d", g, i, nodes-1)
			}
			if prev, dup := groupOf[i]; dup {
				return nil, fmt.Errorf("lab options: node %d is in SameSite[%d] and SameSite[%d]", i, prev, g)
			}
			groupOf[i] = g
		}
	}
	var sites [][]int
	placed := make(map[int]bool)
	for i := 0; i < nodes; i++ {
		if placed[i] {
			continue
		}
		members := []int{i}
		if g, ok := groupOf[i]; ok {
			members = groups[g]
		}
		for _, m := range members {
			placed[m] = true
		}
		sites = append(sites, members)
	}
	return sites, nil
}

// hostAddr replaces the last octet of a /24 address.
func hostAddr(in24 netip.Addr, host int) netip.Addr {
	b := in24.As4()
	b[3] = byte(host)
	return netip.AddrFrom4(b)
}

func prefix24(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, underlayBits) }

// hostAddr6 replaces the last 16 bits of a /64 address with host,
// written in decimal digits (host 10 is ::10), as the IPv4 plan reads.
func hostAddr6(in64 netip.Addr, host int) netip.Addr {
	b := in64.As16()
	v := 0
	for _, d := range fmt.Sprint(host) {
		v = v*16 + int(d-'0')
	}
	b[14], b[15] = byte(v>>8), byte(v)
	return netip.AddrFrom16(b)
}

// underlayPrefix is a's underlay subnet: /24 for IPv4, /64 for IPv6.
func underlayPrefix(a netip.Addr) netip.Prefix {
	if a.Is6() {
		return netip.PrefixFrom(a, underlayBits6)
	}
	return prefix24(a)
}
