package main

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/peerset"
	"github.com/overlayd/overlayd/statusdoc"
	"github.com/overlayd/overlayd/subnet"
)

// The IPv6 data plane (EnableIPv6): the IPv4 plane's machinery a second
// time (docs/compatibility.md, "IPv6 and dual-stack"). flannel-v6.<VNI>
// binds the underlay's IPv6 address; our lease advertises PublicIPv6 and
// the device's MAC in BackendV6Data; a second Reconciler programs each
// peer's IPv6 subnet behind its PublicIPv6, fed by a second peer set that
// sees the IPv6 view of every lease (peerset.IPv6Feed). Same-site
// detection, the health probes and the blackhole route stay IPv4 only.

// familyRegisterer is where one family's data plane registers its
// metrics. An IPv4-only node keeps today's metrics, without labels; once
// the IPv6 plane runs, each plane's carry family="ipv4" or "ipv6", so
// that the two reconcilers' and peer sets' metrics do not collide.
func (d *daemon) familyRegisterer(cfg *subnet.Config, family string) prometheus.Registerer {
	if !cfg.EnableIPv6 {
		return d.reg
	}
	return prometheus.WrapRegistererWith(prometheus.Labels{"family": family}, d.reg)
}

// deviceSpec6 is flannel-v6.<VNI>: the IPv4 device's options over the
// IPv6 bind address, MTU the underlay's (or Backend.MTU) minus 70.
func (d *daemon) deviceSpec6(cfg *subnet.Config, mac []byte) backend.DeviceSpec {
	return d.vxlanSpec(cfg, mac, d.choice.Addr6, d.public6, backend.DeviceOverheadV6)
}

// previousV6MAC asks src for the IPv6 device's previous MAC: the VtepMAC
// of our lease's BackendV6Data (the backend-v6-data annotation in kube
// mode), the lease acquire will reuse, found by our PublicIP (PublicIPv6
// in an IPv6-only network); nil means a derived MAC.
func (d *daemon) previousV6MAC(ctx context.Context, src leaseSource) []byte {
	public := d.public
	if !public.IsValid() {
		public = d.public6
	}
	return src.previousV6VtepMAC(ctx, public)
}

// setupDevice6 creates or adopts flannel-v6.<VNI>, keeping the MAC of
// the lease src will reuse. Tx checksum offload is left as the kernel
// sets it: the NAT checksum fault it works around is IPv4's.
func (d *daemon) setupDevice6(ctx context.Context, src leaseSource, cfg *subnet.Config) error {
	dev, err := backend.EnsureDevice(d.h, d.deviceSpec6(cfg, d.previousV6MAC(ctx, src)), d.log)
	if err != nil {
		return fmt.Errorf("IPv6 vxlan device: %w", err)
	}
	d.mu.Lock()
	d.device6 = dev
	d.mu.Unlock()
	d.log.Info("IPv6 vxlan device ready", "dev", dev.Name, "mac", dev.MAC.String(), "mtu", dev.MTU, "local", dev.LocalIP, "vni", dev.VNI)
	return nil
}

// setupHost6 gives flannel-v6.<VNI> the /128 of our IPv6 subnet.
func (d *daemon) setupHost6(cfg *subnet.Config, lease subnet.Lease) error {
	if !lease.IPv6Subnet.IsValid() {
		return fmt.Errorf("EnableIPv6 is set but our lease %s has no IPv6 subnet", subnet.KeyName(lease.Subnet))
	}
	if err := backend.EnsureDeviceAddress(d.h, d.device6, lease.IPv6Subnet, cfg.IPv6Network, d.log); err != nil {
		return fmt.Errorf("address on %s: %w", d.device6.Name, err)
	}
	return nil
}

// startPlane6 starts the IPv6 reconciler and peer set in g and returns
// the lease manager's sink for them; the peer set feeds the IPv6 VXLAN
// peer filter through feed (nil: no filter). It opens a netlink handle of its
// own: the reconciler's dumps run beside the IPv4 one's.
func (d *daemon) startPlane6(g *group, cfg *subnet.Config, lease subnet.Lease, feed *filterFeed) (subnet.PeerSink, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	kernel, err := backend.NewNetlinkKernel(h, netns.None())
	if err != nil {
		h.Close()
		return nil, err
	}
	log := d.log.With("family", "ipv6")
	reg := d.familyRegisterer(cfg, "ipv6")
	rec, err := backend.NewReconciler(backend.ReconcilerOptions{
		Kernel: kernel, LinkName: d.device6.Name, LinkIndex: d.device6.Index,
		ExtLinkIndex: d.choice.Iface.Index, Network: cfg.IPv6Network, OwnSubnet: lease.IPv6Subnet,
		DirectRouting: cfg.VXLAN.DirectRouting, ResyncInterval: d.opts.resyncInterval, RouteMode: d.opts.routeMode,
		Logger: log, Registerer: reg,
		OnDeviceMissing: func(ctx context.Context) (int, error) {
			dev, err := d.recreateDevice(h, d.deviceSpec6(cfg, d.device6.MAC), lease.IPv6Subnet, cfg.IPv6Network, "IPv6 vxlan device")
			return dev.Index, err
		},
	})
	if err != nil {
		kernel.Close()
		h.Close()
		return nil, err
	}
	set, err := peerset.New(peerset.Options{
		Network: cfg.IPv6Network, OwnSubnet: lease.IPv6Subnet, SubnetLen: d.peerSubnetLen(lease.IPv6Subnet, cfg.IPv6SubnetLen),
		LocalAddrs: []netip.Addr{d.choice.Addr6, d.public6}, Peers: rec,
		Addrs: addrSink6(feed), Logger: log, Registerer: reg, // peerfilter.go
	})
	if err != nil {
		kernel.Close()
		h.Close()
		return nil, err
	}
	d.mu.Lock()
	d.rec6, d.peers6 = rec, set
	d.mu.Unlock()
	g.go_("sync-ipv6", func(ctx context.Context) error {
		defer h.Close()
		defer kernel.Close()
		return rec.Run(ctx)
	})
	g.go_("peers-ipv6", set.Run)
	return peerset.NewIPv6Feed(set), nil
}

// podMTU is FLANNEL_MTU: the VXLAN device's MTU, the smaller of the two
// with both families (a pod has one MTU for both, and IPv6 VXLAN carries
// 20 bytes more header).
func (d *daemon) podMTU(cfg *subnet.Config) int {
	switch {
	case !cfg.EnableIPv6:
		return d.device.MTU
	case !cfg.EnableIPv4:
		return d.device6.MTU
	}
	return min(d.device.MTU, d.device6.MTU)
}

// status6 adds the IPv6 plane to the /status document: the underlay's
// IPv6 addresses, flannel-v6.<VNI>, its reconciler and the IPv6 peer set's
// refusals (Family "ipv6", after the IPv4 ones). Called with d.mu held.
func (d *daemon) status6(doc *statusdoc.Doc) {
	if d.choice.Addr6.IsValid() {
		doc.Underlay.Iface = d.choice.Iface.Name
		doc.Underlay.Bind6, doc.Underlay.Advertise6 = d.choice.Addr6.String(), d.public6.String()
		if !d.choice.Addr.IsValid() {
			doc.Underlay.AdvertiseOnHost = d.advertiseOnHost // of the IPv6 pair in an IPv6-only network
		}

	}
	if d.device6.Name != "" {
		doc.DeviceV6 = &statusdoc.Device{Name: d.device6.Name, MAC: d.device6.MAC.String(), MTU: d.device6.MTU,
			Local: d.device6.LocalIP.String(), VNI: d.device6.VNI}
	}
	if d.rec6 != nil {
		doc.SyncV6 = syncStatus(d.rec6.Status())
	}
	if d.peers6 != nil {
		for _, r := range refusedStatus(d.peers6.Refused()) {
			r.Family, r.Field = "ipv6", ipv6Field(r.Field)
			doc.RefusedLeases = append(doc.RefusedLeases, r)
		}
	}
}

// ipv6Field names the lease field an IPv6 refusal is about: the IPv6 peer
// set sees the IPv6 fields under the IPv4 names (peerset.IPv6View).
func ipv6Field(f string) string {
	switch f {
	case "Subnet":
		return "IPv6Subnet"
	case "PublicIP":
		return "PublicIPv6"
	case "BackendData":
		return "BackendV6Data"
	}
	return f
}

// prefixString is p, or "" when p is invalid (the IPv4 subnet of an
// IPv6-only lease).
func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}
