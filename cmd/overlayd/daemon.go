package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/internal/sdnotify"
	"github.com/overlayd/overlayd/peerset"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/underlay"
	"github.com/overlayd/overlayd/vxlandata"
)

// vxlanOverhead is outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14).
const vxlanOverhead = 50

func daemonMain(args []string) int {
	o, err := parseOptions(args, os.Getenv, os.Stderr)
	if err != nil {
		if code := exitCodeFor(err); code == 0 {
			return 0
		}
		fmt.Fprintf(os.Stderr, "overlayd: %v\n", err)
		return 2
	}
	if o.showVersion {
		fmt.Println(versionString())
		return 0
	}
	log := newLogger(o.logLevel, o.logFormat)
	for _, w := range o.warnings {
		log.Warn(w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("overlayd stopped with an error", "err", err)
		return 1
	}
	log.Info("stopped; device, kernel entries, iptables rules, lease and subnet file are left in place")
	return 0
}

func newLogger(level, format string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// daemon holds what run wires together, for /status.
type daemon struct {
	// mu guards the fields below it that /status reads while run sets them.
	mu     sync.Mutex
	opts   options
	log    *slog.Logger
	reg    *prometheus.Registry
	ready  readiness
	choice underlay.Choice
	device backend.Device
	src    leaseSource // nil until openSource
	rec    *backend.Reconciler
	peers  *peerset.Set
	ipt    rulesKeeper // iptables or nftables (rules.go)
	// etcdAPI is "v2" or "v3": v2 leases use flannel v0.11's BackendData.
	etcdAPI string
	// advertiseOnHost is false when --public-ip (--public-ipv6 in an
	// IPv6-only network) is on no interface (NAT).
	advertiseOnHost bool
	// subnetFile writes the subnet file and retries a failed write.
	subnetFile *subnetFile
	// peerFilter is nil unless --vxlan-peer-filter.
	peerFilter vxlanFilter
	public     netip.Addr
	offload    *txOffload
	health     *healthProbes // nil when off (health.go)
	// sameSiteKey signs our same-site answers (samesitekey.go); nil: none.
	sameSiteKey ed25519.PrivateKey

	// The IPv6 plane (ipv6plane.go), set when the config enables IPv6.
	public6 netip.Addr
	device6 backend.Device
	rec6    *backend.Reconciler
	peers6  *peerset.Set

	// startMem holds the start's tighter GC target until every plane is
	// in sync (startmemory.go).
	startMem *startMemory

	// Set by openHost, read by the later steps (all on run's goroutine).
	h    *netlink.Handle
	prev subnet.SubnetEnv
}

// run starts the daemon in flannel's order (start.go): config, interface,
// device, lease, iptables, subnet file, peer sync, READY=1, renewal. It
// returns nil when ctx ends (SIGTERM) and tears nothing down.
func run(ctx context.Context, o options, log *slog.Logger) error {
	d := &daemon{opts: o, log: log, reg: prometheus.NewRegistry(), startMem: lowerGCFromEnv()}
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerBuildInfo(d.reg)
	d.offload = newTxOffload(o.txChecksumOffload, o.iptablesResync, d.reg)
	if err := d.startHTTP(ctx); err != nil {
		return err
	}
	return start(ctx, d)
}

// openSource is the one place the mode is chosen: etcd or Kubernetes.
func (d *daemon) openSource(ctx context.Context) (leaseSource, *subnet.Config, error) {
	clock := subnet.RealClock()
	var (
		src leaseSource
		cfg *subnet.Config
		err error
	)
	if d.opts.kube.enabled {
		src, cfg, err = d.openKubeSource(ctx, clock) // kube.go
	} else {
		src, cfg, err = d.openEtcdSource(ctx, clock)
	}
	if err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	d.src = src
	d.mu.Unlock()
	return src, cfg, nil
}

// openEtcdSource connects to etcd and waits for the network config.
func (d *daemon) openEtcdSource(ctx context.Context, clock subnet.Clock) (leaseSource, *subnet.Config, error) {
	reg, api, err := openRegistry(ctx, d.opts, d.log)
	if err != nil {
		return nil, nil, fmt.Errorf("etcd: %w", err)
	}
	d.mu.Lock()
	d.etcdAPI = api
	d.mu.Unlock()
	cfg, err := subnet.WaitForConfig(ctx, reg, clock, d.log)
	if err != nil {
		reg.Close()
		return nil, nil, err
	}
	return &etcdSource{
		reg: reg, etcdAPI: api, cfg: cfg, clock: clock, log: d.log, registerer: d.reg,
		renewMargin: d.opts.renewMargin, ttl: d.opts.leaseTTL, onLeaseExpired: d.ready.setExpired,
		nodeID: hostNodeID(os.ReadFile, os.Hostname), // nodeid.go
	}, cfg, nil
}

// openHost logs the config, opens netlink, chooses the underlay and reads
// the previous subnet file.
func (d *daemon) openHost(cfg *subnet.Config) error {
	log := d.log
	log.Info("network config", "network", cfg.Network, "subnetLen", cfg.SubnetLen, "backend", cfg.BackendType, "vni", cfg.VXLAN.VNI,
		"ipv4", cfg.EnableIPv4, "ipv6", cfg.EnableIPv6, "ipv6Network", cfg.IPv6Network, "ipv6SubnetLen", cfg.IPv6SubnetLen)
	if d.opts.publicIPv6.IsValid() && !cfg.EnableIPv6 {
		// A lease with PublicIPv6 but no IPv6Subnet makes flanneld v0.28
		// nodes with EnableIPv6 crash while allocating (a nil IPv6Subnet
		// compared with their candidate): without EnableIPv6 it stays out.
		log.Warn("--public-ipv6 is ignored: the network config does not enable IPv6", "public_ipv6", d.opts.publicIPv6)
	}
	if d.opts.publicIP.IsValid() && !cfg.EnableIPv4 {
		log.Warn("--public-ip is ignored: the network config disables IPv4 (EnableIPv4 false)", "public_ip", d.opts.publicIP)
	}
	if err := d.checkRulesMode(cfg); err != nil { // rules.go
		return err
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	d.h = h
	if err := d.selectUnderlay(h, cfg); err != nil {
		return err
	}
	removeStaleSubnetTemps(d.opts.subnetFile, log) // subnetfile.go
	d.prev = readPreviousSubnetFile(d.opts.subnetFile, log)
	return nil
}

func (d *daemon) closeHost() {
	if d.h != nil {
		d.h.Close()
	}
}

// setupHost is the rest of the start once the lease is ours.
func (d *daemon) setupHost(cfg *subnet.Config, lease subnet.Lease) error {
	o, log := d.opts, d.log
	if cfg.EnableIPv4 {
		if err := backend.EnsureDeviceAddress(d.h, d.device, lease.Subnet, cfg.Network, log); err != nil {
			return fmt.Errorf("address on %s: %w", d.device.Name, err)
		}
	}
	if cfg.EnableIPv6 {
		if err := d.setupHost6(cfg, lease); err != nil { // ipv6plane.go
			return err
		}
	}
	if err := d.setupIPTables(cfg, lease, d.prev); err != nil {
		return err
	}
	env := subnetEnv(cfg, lease, d.podMTU(cfg), o.ipMasq) // subnetfile.go, ipv6plane.go
	d.subnetFile = &subnetFile{path: o.subnetFile, env: env, ready: &d.ready, log: log}
	d.subnetFile.write() // retried by runLoops when it fails (subnetfile.go)
	return nil
}

func (d *daemon) startHTTP(ctx context.Context) error {
	o := d.opts
	if o.healthzAddr != "" {
		if err := serveHTTP(ctx, o.healthzAddr, healthMux(&d.ready), d.log); err != nil {
			return fmt.Errorf("--healthz-ip/--healthz-port %s: %w", o.healthzAddr, err)
		}
	}
	if o.metricsAddr != "" {
		mux := metricsMux(&d.ready, d.reg, d.status, o.healthzAddr == "")
		if err := serveHTTP(ctx, o.metricsAddr, mux, d.log); err != nil {
			return fmt.Errorf("--metrics-addr %s: %w", o.metricsAddr, err)
		}
	}
	return nil
}

func (d *daemon) selectUnderlay(h *netlink.Handle, cfg *subnet.Config) error {
	spec := underlay.Spec{Ifaces: d.opts.ifaces, IfaceRegex: d.opts.ifaceRegex, IfaceCanReach: d.opts.ifaceCanReach,
		IPv4Off: !cfg.EnableIPv4, IPv6: cfg.EnableIPv6}
	choice, err := underlay.Select(underlay.NetlinkHost{H: h}, spec)
	if err != nil {
		return fmt.Errorf("choose the external interface: %w", err)
	}
	public, public6 := choice.Addr, choice.Addr6
	if d.opts.publicIP.IsValid() && cfg.EnableIPv4 {
		public = d.opts.publicIP
	}
	if d.opts.publicIPv6.IsValid() && cfg.EnableIPv6 {
		public6 = d.opts.publicIPv6
	}
	d.mu.Lock()
	d.choice, d.public, d.public6 = choice, public, public6
	d.mu.Unlock()
	d.log.Info("underlay chosen", "iface", choice.Iface.Name, "bind", choice.Addr, "advertise", d.public,
		"bind6", choice.Addr6, "advertise6", d.public6, "mtu", choice.Iface.MTU, "why", choice.Reason)
	// Behind 1:1 NAT the advertised address is on no interface; in an
	// IPv6-only network the IPv6 pair tells.
	adv, bind := public, choice.Addr
	if !cfg.EnableIPv4 {
		adv, bind = public6, choice.Addr6
	}
	onHost := true
	if adv != bind {
		onHost, _ = addressOnHost(h, adv)
		if onHost {
			d.log.Info("the advertised address is on this host; the VXLAN device still binds the interface address", "advertise", adv, "bind", bind)
		} else {
			d.log.Info("the advertised address is on no interface: normal behind 1:1 NAT; peers send VXLAN to it and the NAT forwards to the bind address",
				"advertise", adv, "bind", bind)
		}
	}
	d.mu.Lock()
	d.advertiseOnHost = onHost
	d.mu.Unlock()
	return nil
}

func addressOnHost(h *netlink.Handle, ip netip.Addr) (bool, error) {
	ifaces, err := underlay.NetlinkHost{H: h}.Interfaces()
	if err != nil {
		return false, err
	}
	for _, ifc := range ifaces {
		for _, a := range ifc.Addrs {
			if a.Addr() == ip {
				return true, nil
			}
		}
	}
	return false, nil
}

// deviceSpec is the VXLAN device we want; mac is the one to keep (nil:
// derive one from the VNI, the bind and the advertised address). Its MTU
// leaves room for the 50 bytes of VXLAN over IPv4 encapsulation
// (docs/compatibility.md).
func (d *daemon) deviceSpec(cfg *subnet.Config, mac []byte) backend.DeviceSpec {
	return d.vxlanSpec(cfg, mac, d.choice.Addr, d.public, vxlanOverhead)
}

// vxlanSpec is a VXLAN device with cfg's Backend options over the underlay
// interface, bound to local, its derived MAC seeded with public (our
// advertised address); its MTU is the underlay's (the interface's, or
// Backend.MTU when set) minus overhead, the encapsulation's.
func (d *daemon) vxlanSpec(cfg *subnet.Config, mac []byte, local, public netip.Addr, overhead int) backend.DeviceSpec {
	mtu := d.choice.Iface.MTU
	if cfg.VXLAN.MTU > 0 {
		mtu = cfg.VXLAN.MTU
	}
	return backend.DeviceSpec{
		VNI: cfg.VXLAN.VNI, Port: cfg.VXLAN.Port, GBP: cfg.VXLAN.GBP, Learning: cfg.VXLAN.Learning,
		ExtLinkIndex: d.choice.Iface.Index, LocalIP: local, MTU: mtu - overhead,
		MAC: mac, MACSeed: []string{public.String()},
	}
}

func (d *daemon) setupDevice(ctx context.Context, src leaseSource, cfg *subnet.Config) error {
	if cfg.EnableIPv6 {
		if err := d.setupDevice6(ctx, src, cfg); err != nil { // ipv6plane.go
			return err
		}
	}
	if !cfg.EnableIPv4 {
		return nil
	}
	dev, err := backend.EnsureDevice(d.h, d.deviceSpec(cfg, src.previousVtepMAC(ctx, d.public)), d.log)
	if err != nil {
		return fmt.Errorf("vxlan device: %w", err)
	}
	d.mu.Lock()
	d.device = dev
	d.mu.Unlock()
	d.offload.decide(netip.AddrPortFrom(d.choice.Addr, uint16(vxlanPort(cfg))), cfg.EnableNFTables, d.log)
	d.offload.apply(dev.Name, d.log)
	d.log.Info("vxlan device ready", "dev", dev.Name, "mac", dev.MAC.String(), "mtu", dev.MTU, "local", dev.LocalIP, "vni", dev.VNI)
	return nil
}

func (d *daemon) acquireLease(ctx context.Context, src leaseSource, cfg *subnet.Config) (subnet.Lease, error) {
	attrs := subnet.LeaseAttrs{BackendType: subnet.BackendVXLAN}
	if cfg.EnableIPv4 {
		data, err := src.backendData(vxlandata.Data{VNI: cfg.VXLAN.VNI, VtepMAC: d.device.MAC})
		if err != nil {
			return subnet.Lease{}, err
		}
		attrs.PublicIP, attrs.BackendData = d.public, data
	}
	if cfg.EnableIPv6 {
		data, err := src.backendData(vxlandata.Data{VNI: cfg.VXLAN.VNI, VtepMAC: d.device6.MAC})
		if err != nil {
			return subnet.Lease{}, err
		}
		attrs.PublicIPv6, attrs.BackendV6Data = d.public6, data
	}
	if cfg.EnableIPv4 && d.choice.Addr != d.public {
		// Only behind NAT: same-site peers can then reach us directly. Without
		// NAT the lease is what flanneld writes plus OverlaydNodeID (source.go).
		attrs.PrivateIP = d.choice.Addr
		attrs.SameSiteKey = d.sameSiteLeaseKey() // samesitekey.go
	}
	return src.acquire(ctx, attrs, d.prev)
}

func (d *daemon) setupIPTables(cfg *subnet.Config, lease subnet.Lease, prev subnet.SubnetEnv) error {
	ipt, err := d.newRules(cfg, lease, prev) // rules.go: iptables or nftables
	if err != nil {
		return err
	}
	if err := ipt.Ensure(); err != nil {
		// Keep going: the resync loop retries, and routes matter more.
		d.log.Error("iptables rules not in place yet; retrying every resync", "err", err)
	}
	d.mu.Lock()
	d.ipt = ipt
	d.mu.Unlock()
	return nil
}

// runLoops starts peer sync (each family's plane the config enables),
// READY=1, lease renewal and the iptables resync, and waits until ctx ends
// or one of them fails for good.
func (d *daemon) runLoops(ctx context.Context, src leaseSource, cfg *subnet.Config, lease subnet.Lease) error {
	feed, err := d.setupPeerFilter(cfg)
	if err != nil {
		return err
	}
	g := newGroup(ctx)
	// The sinks the lease manager feeds; the IPv4 peer set keeps the
	// snapshot slice, so it comes last (peerset.Tee).
	var sinks peerset.Tee
	if cfg.EnableIPv6 {
		sink6, err := d.startPlane6(g, cfg, lease, feed) // ipv6plane.go
		if err != nil {
			g.cancel()
			g.wait()
			return err
		}
		sinks = append(sinks, sink6)
	}
	if cfg.EnableIPv4 {
		set, closeKernel, err := d.startPlane4(g, cfg, lease, feed)
		if err != nil {
			g.cancel()
			g.wait()
			return err
		}
		defer closeKernel()
		sinks = append(sinks, set)
	}
	g.go_("start-memory", d.runStartMemory) // startmemory.go
	g.go_("subnet-file", d.subnetFile.run)
	if feed != nil {
		g.go_("vxlan-peer-filter", func(ctx context.Context) error {
			return feed.run(ctx, d.peerFilter, d.log)
		})
		g.go_("vxlan-peer-filter-resync", func(ctx context.Context) error {
			return d.peerFilter.Run(ctx, d.opts.iptablesResync)
		})
	}
	var sink subnet.PeerSink = sinks
	if len(sinks) == 1 {
		sink = sinks[0]
	}
	g.go_("watch", func(ctx context.Context) error { return src.RunWatch(ctx, sink) })
	g.go_("renew", src.RunRenewal)
	g.go_("iptables", d.ipt.Run)
	g.go_("vxlan-nat-exemption", d.offload.run)
	if d.opts.blackholeRoute && cfg.EnableIPv4 {
		g.go_("blackhole-route", func(ctx context.Context) error {
			bh, err := netlink.NewHandle() // a socket of its own: the loop runs beside the reconciler
			if err != nil {
				return fmt.Errorf("open netlink: %w", err)
			}
			defer bh.Close()
			return runBlackholeRoute(ctx, bh, lease.Subnet, d.opts.iptablesResync, d.log)
		})
	}
	if err := sdnotify.Notify(os.Getenv("NOTIFY_SOCKET"), sdnotify.Ready); err != nil {
		d.log.Warn("sd_notify failed", "err", err)
	}
	return ignoreCanceled(ctx, g.wait())
}

// startPlane4 starts the IPv4 plane in g: the reconciler of flannel.<VNI>,
// the peer set with same-site detection and the health probes. It returns
// the peer set (the lease manager's sink) and what closes the reconciler's
// netlink socket once g is done.
func (d *daemon) startPlane4(g *group, cfg *subnet.Config, lease subnet.Lease, feed *filterFeed) (*peerset.Set, func(), error) {
	h := d.h
	ss := d.setupSameSite(lease) // samesite.go
	// A socket of its own reads the full-pass dumps without per-entry garbage.
	kernel, err := backend.NewNetlinkKernel(h, netns.None())
	if err != nil {
		return nil, nil, err
	}
	reg := d.familyRegisterer(cfg, "ipv4") // ipv6plane.go
	rec, err := backend.NewReconciler(backend.ReconcilerOptions{
		Kernel: kernel, LinkName: d.device.Name, LinkIndex: d.device.Index,
		ExtLinkIndex: d.choice.Iface.Index, Network: cfg.Network, OwnSubnet: lease.Subnet,
		DirectRouting: cfg.VXLAN.DirectRouting, ResyncInterval: d.opts.resyncInterval, RouteMode: d.opts.routeMode,
		Logger: d.log, Registerer: reg,
		OnDeviceMissing: func(ctx context.Context) (int, error) {
			dev, err := d.recreateDevice(h, d.deviceSpec(cfg, d.device.MAC), lease.Subnet, cfg.Network, "vxlan device")
			if err == nil {
				d.offload.apply(dev.Name, d.log)
			}
			return dev.Index, err
		},
	})
	if err != nil {
		kernel.Close()
		return nil, nil, err
	}
	d.mu.Lock()
	d.rec = rec
	d.mu.Unlock()
	set, err := peerset.New(peerset.Options{
		Network: cfg.Network, OwnSubnet: lease.Subnet, SubnetLen: d.peerSubnetLen(lease.Subnet, cfg.SubnetLen),
		LocalAddrs: []netip.Addr{d.choice.Addr, d.public}, Peers: rec,
		Candidates: ss.candidates(), Addrs: addrSink(feed), Logger: d.log, Registerer: reg,
	})
	if err != nil {
		kernel.Close()
		return nil, nil, err
	}
	ss.attach(set)
	d.mu.Lock()
	d.peers = set
	d.mu.Unlock()
	d.startHealth(g) // health.go
	g.go_("sync", rec.Run)
	g.go_("peers", set.Run)
	g.go_("same-site", ss.run)
	return set, func() { kernel.Close() }, nil
}

// peerSubnetLen is the length every peer subnet of a family must have:
// subnetLen (the config's SubnetLen or IPv6SubnetLen), or in kube mode
// (where the controller-manager sizes podCIDRs and SubnetLen is not used)
// our own podCIDR's, own.
func (d *daemon) peerSubnetLen(own netip.Prefix, subnetLen int) int {
	if d.opts.kube.enabled {
		return own.Bits()
	}
	return subnetLen
}

// recreateDevice is called by a reconciler when its device vanished: spec
// is the device's (keeping its MAC), own its address in network; what
// names it in the log.
func (d *daemon) recreateDevice(h *netlink.Handle, spec backend.DeviceSpec, own, network netip.Prefix, what string) (backend.Device, error) {
	dev, err := backend.EnsureDevice(h, spec, d.log)
	if err != nil {
		return backend.Device{}, err
	}
	if err := backend.EnsureDeviceAddress(h, dev, own, network, d.log); err != nil {
		return backend.Device{}, err
	}
	d.log.Warn(what+" was missing and has been recreated", "dev", dev.Name, "mac", dev.MAC.String())
	return dev, nil
}

func readPreviousSubnetFile(path string, log *slog.Logger) subnet.SubnetEnv {
	env, err := subnet.ReadSubnetFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return subnet.SubnetEnv{}
	case err != nil:
		log.Warn("ignoring unreadable previous subnet file", "path", path, "err", err)
		return subnet.SubnetEnv{}
	}
	log.Info("previous subnet file", "path", path, "network", env.Network, "subnet", env.Subnet)
	return env
}

func ignoreCanceled(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	if ctx.Err() != nil && err != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// setupPeerFilter feeds the peer filter installed at start
// (peerfilter_start.go) from the peer set; nil when it is off.
func (d *daemon) setupPeerFilter(cfg *subnet.Config) (*filterFeed, error) {
	if d.peerFilter == nil {
		return nil, nil
	}
	return newFilterFeed(subnet.RealClock()), nil
}

// addrSink is the peer set's AddrSink: nil (no filter) stays an untyped nil.
func addrSink(f *filterFeed) peerset.AddrSink {
	if f == nil {
		return nil
	}
	return f
}

// vxlanPort is the UDP port VXLAN goes to (peers use the same).
func vxlanPort(cfg *subnet.Config) int {
	if cfg.VXLAN.Port == 0 {
		return backend.DeviceDefaultPort
	}
	return cfg.VXLAN.Port
}
