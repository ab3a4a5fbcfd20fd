package benchns

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Counts are a device's per-peer entries as a kernel dump shows them.
type Counts struct {
	Neighbours int `json:"neighbours"`
	FDB        int `json:"fdb"`
	Routes     int `json:"routes"`
}

// Total is the sum of the three kinds.
func (c Counts) Total() int { return c.Neighbours + c.FDB + c.Routes }

// CountEntries dumps the kernel through h and counts, on the device with
// index link: permanent IPv4 neighbours, permanent unicast FDB entries, and
// main-table routes with a gateway (the per-peer routes).
func CountEntries(h *netlink.Handle, link int) (Counts, error) {
	return CountEntriesFamily(h, link, unix.AF_INET)
}

// CountEntriesFamily is CountEntries with the neighbours and routes of
// family (unix.AF_INET6 for flannel-v6.<VNI>).
func CountEntriesFamily(h *netlink.Handle, link, family int) (Counts, error) {
	var c Counts
	neighs, err := h.NeighList(link, family)
	if err != nil {
		return c, fmt.Errorf("dump neighbours of link %d: %w", link, err)
	}
	for _, n := range neighs {
		if n.LinkIndex == link && n.State&netlink.NUD_PERMANENT != 0 {
			c.Neighbours++
		}
	}
	fdb, err := h.NeighList(link, unix.AF_BRIDGE)
	if err != nil {
		return c, fmt.Errorf("dump fdb of link %d: %w", link, err)
	}
	for _, n := range fdb {
		if n.LinkIndex == link && n.State&netlink.NUD_PERMANENT != 0 && len(n.HardwareAddr) == 6 &&
			n.HardwareAddr[0]&1 == 0 && n.IP != nil {
			c.FDB++
		}
	}
	routes, err := h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN, LinkIndex: link},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF)
	if err != nil {
		return c, fmt.Errorf("dump routes of link %d: %w", link, err)
	}
	for _, r := range routes {
		if r.Gw != nil && r.Dst != nil {
			c.Routes++
		}
	}
	return c, nil
}

func netipPrefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
