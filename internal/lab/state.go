package lab

import (
	"context"
	"strings"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// FlannelDevice is the VXLAN device of VNI 1; FlannelDeviceV6 its IPv6
// counterpart.
const (
	FlannelDevice   = "flannel.1"
	FlannelDeviceV6 = "flannel-v6.1"
)

// DeviceState is a device's kernel entries inside a node, in the form
// `ip route`, `ip neigh` and `bridge fdb` print them.
type DeviceState struct {
	Routes []string // `ip route` lines through the device
	Neigh  []string // `ip neigh show dev <dev>`
	FDB    []string // `bridge fdb show dev <dev>`
}

// DeviceState reads the routes, neighbours and FDB entries of dev in n
// (IPv6 routes when dev is FlannelDeviceV6 or another flannel-v6 device).
func (l *Lab) DeviceState(ctx context.Context, n *Node, dev string) (DeviceState, error) {
	family := "-4"
	if strings.HasPrefix(dev, "flannel-v6.") {
		family = "-6"
	}
	routes, err := netnsutil.Exec(ctx, n.NS, "ip", family, "route", "show")
	if err != nil {
		return DeviceState{}, err
	}
	neigh, err := netnsutil.Exec(ctx, n.NS, "ip", "neigh", "show", "dev", dev)
	if err != nil {
		return DeviceState{}, err
	}
	fdb, err := netnsutil.Exec(ctx, n.NS, "bridge", "fdb", "show", "dev", dev)
	if err != nil {
		return DeviceState{}, err
	}
	var s DeviceState
	for _, line := range lines(routes) {
		if strings.Contains(line, " dev "+dev+" ") || strings.HasSuffix(line, " dev "+dev) {
			s.Routes = append(s.Routes, line)
		}
	}
	s.Neigh, s.FDB = lines(neigh), lines(fdb)
	return s, nil
}

func lines(out string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			ls = append(ls, l)
		}
	}
	return ls
}
