package doctor

import (
	"context"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"

	"github.com/overlayd/overlayd/subnet"
)

// facts is what the checks share: gathered once, from the daemon's
// /status when it runs, else from the datastore, the subnet file and the
// kernel.
type facts struct {
	cfg      *subnet.Config
	cfgErr   error
	leases   []subnet.Lease
	leaseErr error
	env      subnet.SubnetEnv
	envErr   error
	// own is our lease subnet (invalid when unknown); ownLease the lease.
	own      netip.Prefix
	ownLease *subnet.Lease
	links    []Link
	linksErr error
	// device is flannel.<VNI> (nil when missing).
	device *Link
	// bind is the VXLAN source address; advertise the lease's PublicIP.
	bind, advertise netip.Addr
	// kubeProxy: kube-proxy's iptables chains exist.
	kubeProxy bool
	// probes are the one-shot probes (reach.go), once probed is set.
	probed bool
	// leasesFromStatus: leases are the daemon's peers (datastore down).
	leasesFromStatus bool
	probes           []peerProbe
}

func gather(ctx context.Context, e *Env) *facts {
	f := &facts{}
	f.readStore(ctx, e)
	if f.leaseErr != nil {
		f.peersFromStatus(e)
	}
	f.readSubnetFile(e)
	if e.Net != nil {
		f.links, f.linksErr = e.Net.Links()
	} else {
		f.linksErr = fmt.Errorf("no netlink")
	}
	f.findOwn(e)
	f.findDevice()
	f.findAddresses(e)
	if e.IPT != nil {
		f.kubeProxy, _ = e.IPT.ChainExists("nat", "KUBE-SERVICES")
	}
	return f
}

func (f *facts) readStore(ctx context.Context, e *Env) {
	if e.Store == nil {
		f.cfgErr, f.leaseErr = e.StoreErr, e.StoreErr
		if f.cfgErr == nil {
			f.cfgErr = fmt.Errorf("no datastore given")
			f.leaseErr = f.cfgErr
		}
		return
	}
	raw, err := e.Store.GetNetworkConfig(ctx)
	if err == nil {
		f.cfg, err = subnet.ParseConfig(raw)
	}
	f.cfgErr = err
	list, err := e.Store.ListLeases(ctx)
	f.leases, f.leaseErr = list.Leases, err
}

func (f *facts) readSubnetFile(e *Env) {
	if e.FS == nil || e.Opts.SubnetFile == "" {
		f.envErr = fmt.Errorf("no subnet file path: %w", fs.ErrNotExist)
		return
	}
	data, err := fs.ReadFile(e.FS, fsPath(e.Opts.SubnetFile))
	if err != nil {
		f.envErr = err
		return
	}
	f.env, f.envErr = subnet.ParseSubnetFile(data)
}

// fsPath turns an absolute path into an fs.FS name.
func fsPath(p string) string { return strings.TrimPrefix(p, "/") }

// findOwn: the daemon's lease, else the lease carrying our address, else
// the subnet file's.
func (f *facts) findOwn(e *Env) {
	if s := e.Status; s != nil && s.Lease != nil {
		if p, err := netip.ParsePrefix(s.Lease.Subnet); err == nil {
			f.own = p.Masked()
		}
	}
	if !f.own.IsValid() && e.Opts.PublicIP.IsValid() {
		for _, l := range f.leases {
			if l.Attrs.PublicIP == e.Opts.PublicIP {
				f.own = l.Subnet
			}
		}
	}
	if !f.own.IsValid() && f.envErr == nil && f.env.Subnet.IsValid() {
		f.own = f.env.Subnet.Masked()
	}
	for i := range f.leases {
		if f.leases[i].Subnet == f.own {
			f.ownLease = &f.leases[i]
		}
	}
}

func (f *facts) findDevice() {
	name := "flannel.1"
	if f.cfg != nil && f.cfg.VXLAN.VNI > 0 {
		name = fmt.Sprintf("flannel.%d", f.cfg.VXLAN.VNI)
	}
	f.device = f.link(name)
}

func (f *facts) link(name string) *Link {
	for i := range f.links {
		if f.links[i].Name == name {
			return &f.links[i]
		}
	}
	return nil
}

func (f *facts) deviceName() string {
	if f.device != nil {
		return f.device.Name
	}
	if f.cfg != nil && f.cfg.VXLAN.VNI > 0 {
		return fmt.Sprintf("flannel.%d", f.cfg.VXLAN.VNI)
	}
	return "flannel.1"
}

func (f *facts) findAddresses(e *Env) {
	if s := e.Status; s != nil {
		f.bind, _ = netip.ParseAddr(s.Underlay.Bind)
		f.advertise, _ = netip.ParseAddr(s.Underlay.Advertise)
	}
	if !f.bind.IsValid() && f.device != nil && f.device.VXLAN != nil {
		f.bind = f.device.VXLAN.Local
	}
	if !f.advertise.IsValid() && f.ownLease != nil {
		f.advertise = f.ownLease.Attrs.PublicIP
	}
	if !f.advertise.IsValid() {
		f.advertise = e.Opts.PublicIP
	}
}

// network is the pod network (datastore config, else the subnet file).
func (f *facts) network() netip.Prefix {
	if f.cfg != nil {
		return f.cfg.Network
	}
	if f.envErr == nil {
		return f.env.Network
	}
	return netip.Prefix{}
}

// peers are the other vxlan leases.
func (f *facts) peers() []subnet.Lease {
	var out []subnet.Lease
	for _, l := range f.leases {
		if l.Subnet != f.own && !l.Unreadable && l.Attrs.BackendType == subnet.BackendVXLAN {
			out = append(out, l)
		}
	}
	return out
}

// deviceAddr is our address on flannel.<VNI>: the subnet's network address.
func (f *facts) deviceAddr() netip.Addr {
	if f.own.IsValid() {
		return f.own.Addr()
	}
	return netip.Addr{}
}

// peersFromStatus stands in for the datastore's lease list when it is
// unreachable: the peers the daemon programs (its /status).
func (f *facts) peersFromStatus(e *Env) {
	if e.Status == nil || e.Status.Sync == nil {
		return
	}
	leases := make([]subnet.Lease, 0, len(e.Status.Sync.Peers))
	for _, p := range e.Status.Sync.Peers {
		sn, err1 := netip.ParsePrefix(p.Subnet)
		pub, err2 := netip.ParseAddr(p.PublicIP)
		if err1 != nil || err2 != nil {
			continue
		}
		leases = append(leases, subnet.Lease{Subnet: sn, Attrs: subnet.LeaseAttrs{PublicIP: pub, BackendType: subnet.BackendVXLAN}})
	}
	f.leases, f.leaseErr, f.leasesFromStatus = leases, nil, true
}
