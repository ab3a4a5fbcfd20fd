package lab

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
)

// Topology selects the underlay layout.
type Topology int

const (
	// Flat puts every node on one L2 underlay (192.0.2.0/24) behind a hub
	// bridge; public and interface addresses are the same.
	Flat Topology = iota
	// NAT puts each node (or each SameSite group) behind its own router
	// doing 1:1 NAT: private 198.51.100.0/24 inside, public
	// 203.0.113.0/24 on the shared "internet" hub.
	NAT
)

func (t Topology) String() string {
	switch t {
	case Flat:
		return "flat"
	case NAT:
		return "nat"
	}
	return fmt.Sprintf("Topology(%d)", int(t))
}

// ParseTopology reads "flat" or "nat".
func ParseTopology(s string) (Topology, error) {
	switch s {
	case "flat":
		return Flat, nil
	case "nat":
		return NAT, nil
	}
	return 0, fmt.Errorf("topology %q: want flat or nat", s)
}

// MaxNodes bounds Options.Nodes: node i uses host number 10+i in a /24.
const MaxNodes = 240

// DefaultNetwork is the pod network used when Options.Network is unset,
// 10.244.0.0/16.
func DefaultNetwork() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, 0, 0}), 16)
}

// Options describe the lab to build.
type Options struct {
	Nodes       int
	PodsPerNode int
	Topology    Topology
	// Network is the pod network for the config (default 10.244.0.0/16).
	Network netip.Prefix
	// EtcdEndpoint is a real etcd on root loopback, e.g.
	// http://127.0.0.1:41234 (see internal/etcdtest).
	EtcdEndpoint string
	// NoEtcdProxy builds no etcd proxy (EtcdURL stays empty and
	// EtcdEndpoint is not needed): the test runs etcd inside the lab
	// itself, on hosts (AddHost) the nodes reach directly.
	NoEtcdProxy bool
	// WorkDir holds logs and subnet files (<WorkDir>/<node>/subnet.env).
	// Empty: a temporary directory that Close removes.
	WorkDir string
	// SameSite groups node indexes that share one VPC behind one router
	// (NAT topology only): each gets private 198.51.100.(2+k) and its own
	// 1:1 public address on the router. Nodes in no group have a router
	// of their own.
	SameSite [][]int
	// CNIPlugin is the overlayd binary that AddPods runs as the flannel
	// CNI plugin (required for pods; NewT builds one when empty).
	CNIPlugin string
	// CNIPluginDir holds the bridge, host-local, portmap and loopback
	// plugins (default DefaultCNIPluginDir).
	CNIPluginDir string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
	// Underlay6 gives the underlay IPv6 as well (Flat only): the hub
	// bridge 2001:db8:ff::fe/64, node i's interface 2001:db8:ff::<10+i>/64
	// (Node.UnderlayIP6) with an IPv6 default route via the hub.
	Underlay6 bool
	// NoUnderlay4 leaves IPv4 off the underlay (needs Underlay6): an
	// IPv6-only underlay, where UnderlayIP, PublicIP and HubIP (the etcd
	// proxy's address) are the IPv6 ones.
	NoUnderlay4 bool
}

func (o Options) withDefaults() Options {
	if !o.Network.IsValid() {
		o.Network = DefaultNetwork()
	}
	if o.CNIPluginDir == "" {
		o.CNIPluginDir = DefaultCNIPluginDir
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o Options) validate() error {
	if o.Nodes < 1 || o.Nodes > MaxNodes {
		return fmt.Errorf("lab options: Nodes %d is not in 1..%d", o.Nodes, MaxNodes)
	}
	if o.PodsPerNode < 0 {
		return fmt.Errorf("lab options: PodsPerNode %d is negative", o.PodsPerNode)
	}
	if o.Topology != Flat && o.Topology != NAT {
		return fmt.Errorf("lab options: Topology %d is neither Flat nor NAT", int(o.Topology))
	}
	if !o.Network.Addr().Is4() || o.Network.Masked() != o.Network {
		return fmt.Errorf("lab options: Network %s is not a masked IPv4 prefix", o.Network)
	}
	if len(o.SameSite) > 0 && o.Topology != NAT {
		return fmt.Errorf("lab options: SameSite needs the NAT topology, not %s", o.Topology)
	}
	if o.Underlay6 && o.Topology != Flat {
		return fmt.Errorf("lab options: Underlay6 needs the Flat topology, not %s", o.Topology)
	}
	if o.NoUnderlay4 && !o.Underlay6 {
		return errors.New("lab options: NoUnderlay4 needs Underlay6 (an underlay needs a family)")
	}
	if o.NoEtcdProxy {
		return nil
	}
	if o.EtcdEndpoint == "" {
		return errors.New("lab options: EtcdEndpoint is empty (start one with internal/etcdtest)")
	}
	if _, _, err := parseEndpoint(o.EtcdEndpoint); err != nil {
		return fmt.Errorf("lab options: %w", err)
	}
	return nil
}
