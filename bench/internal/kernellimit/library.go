package kernellimit

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/bench/internal/benchns"
	"github.com/overlayd/overlayd/bench/internal/fakepeers"
)

// timeLibraryWrites installs the peers' entries into a fresh scratch
// namespace through a netlink.Handle, as overlayd's full pass writes them:
// `ip neigh replace ... nud permanent`, `bridge fdb replace ... self
// permanent`, `ip route replace ... onlink`, each one request and ACK.
// It returns the wall time and the bytes the process allocated meanwhile
// (the library's: nothing else runs in the harness then).
func timeLibraryWrites(ctx context.Context, peers []fakepeers.Peer) (seconds float64, allocBytes uint64, err error) {
	ns, err := benchns.New("baselib")
	if err != nil {
		return 0, 0, err
	}
	defer ns.Close()
	if err := benchns.WaitQuiet(ctx, ns.Name); err != nil {
		return 0, 0, err
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	took, err := writeEntries(ns, peers)
	if err != nil {
		return 0, 0, err
	}
	runtime.ReadMemStats(&after)
	if err := expectEntries(ns, len(peers), len(peers), false); err != nil {
		return 0, 0, err
	}
	return took.Seconds(), after.TotalAlloc - before.TotalAlloc, nil
}

func writeEntries(ns *benchns.VXLANNamespace, peers []fakepeers.Peer) (time.Duration, error) {
	h, link := ns.Handle, ns.Device.Index
	start := time.Now()
	for _, p := range peers {
		n := &netlink.Neigh{LinkIndex: link, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
			IP: p.Gateway().AsSlice(), HardwareAddr: p.HardwareAddr()}
		if err := h.NeighSet(n); err != nil {
			return 0, fmt.Errorf("in netns %s: neigh replace %s: %w", ns.Name, p.Gateway(), err)
		}
	}
	for _, p := range peers {
		f := &netlink.Neigh{LinkIndex: link, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
			Flags: netlink.NTF_SELF, IP: p.PublicIP.AsSlice(), HardwareAddr: p.HardwareAddr()}
		if err := h.NeighSet(f); err != nil {
			return 0, fmt.Errorf("in netns %s: fdb replace %s: %w", ns.Name, p.HardwareAddr(), err)
		}
	}
	for _, p := range peers {
		dst := &net.IPNet{IP: p.Subnet.Addr().AsSlice(), Mask: net.CIDRMask(p.Subnet.Bits(), 32)}
		r := &netlink.Route{LinkIndex: link, Dst: dst, Gw: p.Gateway().AsSlice(), Table: unix.RT_TABLE_MAIN,
			Scope: netlink.SCOPE_UNIVERSE, Flags: int(netlink.FLAG_ONLINK)}
		if err := h.RouteReplace(r); err != nil {
			return 0, fmt.Errorf("in netns %s: route replace %s: %w", ns.Name, p.Subnet, err)
		}
	}
	return time.Since(start), nil
}
