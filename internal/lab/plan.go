package lab

import (
	"fmt"
	"net/netip"
)

// Addresses of the two layouts (all TEST-NET, see RFC 5737).
var (
	flatHubIP       = netip.MustParseAddr("192.0.2.254")
	natHubIP        = netip.MustParseAddr("203.0.113.254")
	natRouterInside = netip.MustParseAddr("198.51.100.1")
)

const (
	underlayBits = 24
	underlayMTU  = 1500
	etcdPort     = 2379
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
}

// planNodes assigns addresses; for NAT it also groups nodes into sites
// (each a list of node indexes behind one router).
func planNodes(opts Options) ([]nodePlan, [][]int, error) {
	if opts.Topology == Flat {
		return planFlat(opts.Nodes), nil, nil
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
