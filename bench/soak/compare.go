package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/bench/internal/fakepeers"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// settleAndCompare compares the kernel with desired until they match or
// settle passes, and returns the mismatches of the last comparison.
func settleAndCompare(ctx context.Context, ns string, desired []fakepeers.Peer, own netip.Prefix, settle time.Duration) (int, []string, error) {
	deadline := time.Now().Add(settle)
	for {
		bad, err := compare(ns, desired, own)
		if err != nil {
			return 0, nil, err
		}
		if len(bad) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return len(bad), bad[:min(len(bad), 10)], nil
		}
		time.Sleep(time.Second)
	}
}

// compare lists every difference between the kernel's routes, neighbours
// and FDB entries on flannel.1 and those the desired peers ask for.
func compare(ns string, desired []fakepeers.Peer, own netip.Prefix) ([]string, error) {
	h, err := netnsutil.Handle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	link, err := h.LinkByName(lab.FlannelDevice)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", lab.FlannelDevice, err)
	}
	idx := link.Attrs().Index
	routes, err := h.RouteList(link, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	neighs, err := h.NeighList(idx, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	fdb, err := h.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, p := range desired {
		if p.Subnet == own {
			continue
		}
		want["route "+p.Subnet.String()] = true
		want["neigh "+p.Gateway().String()+" "+p.HardwareAddr().String()] = true
		want["fdb "+p.HardwareAddr().String()+" "+p.PublicIP.String()] = true
	}
	got := map[string]bool{}
	var bad []string
	add := func(k string) {
		if got[k] {
			bad = append(bad, "duplicate "+k)
		}
		got[k] = true
	}
	for _, r := range routes {
		if r.Dst != nil && network.Contains(netip.MustParseAddr(r.Dst.IP.String())) {
			add("route " + r.Dst.String())
		}
	}
	for _, n := range neighs {
		if n.HardwareAddr != nil {
			add("neigh " + n.IP.String() + " " + n.HardwareAddr.String())
		}
	}
	for _, n := range fdb {
		if n.IP != nil && n.HardwareAddr != nil {
			add("fdb " + n.HardwareAddr.String() + " " + n.IP.String())
		}
	}
	for k := range want {
		if !got[k] {
			bad = append(bad, "missing "+k)
		}
	}
	for k := range got {
		if !want[k] {
			bad = append(bad, "unexpected "+k)
		}
	}
	return bad, nil
}
