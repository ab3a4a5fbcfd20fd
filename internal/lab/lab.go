package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// UnderlayIface is the node's underlay interface name (--iface).
const UnderlayIface = "ul0"

// Lab is a running virtual cluster. Close it.
type Lab struct {
	Nodes []*Node
	// Hub is the namespace of the shared underlay bridge (Flat) or of the
	// "internet" bridge the NAT routers hang off, where the etcd proxy
	// listens.
	Hub string
	// HubIP is the hub bridge's address, also the etcd proxy's.
	HubIP netip.Addr
	// EtcdURL is etcd as seen from the nodes: the proxy in the hub.
	EtcdURL string
	// Routers are the NAT router namespaces, one per site (NAT only).
	Routers  []string
	Topology Topology
	Network  netip.Prefix
	WorkDir  string

	opts        Options
	log         *slog.Logger
	ownsWorkDir bool

	mu         sync.Mutex
	closed     bool
	namespaces []string // in creation order; deleted in reverse
	agents     []*Agent
	proxy      *proxy
	hosts      int // AddHost calls so far
}

// Node is one cluster node: a namespace with the underlay interface.
type Node struct {
	Index int
	Name  string // "node0", "node1", ...
	NS    string
	// Router is the NAT router namespace in front of the node ("" on Flat).
	Router string
	// UnderlayIP is the address on Iface (the VXLAN bind address); the
	// IPv6 one on an IPv6-only underlay (Options.NoUnderlay4).
	UnderlayIP netip.Addr
	// UnderlayIP6 is the IPv6 address on Iface (Options.Underlay6): the
	// bind address of flannel-v6.<VNI>, and its PublicIPv6.
	UnderlayIP6 netip.Addr
	// PublicIP is the address other nodes reach this node at: the
	// router's 1:1 NAT address, or UnderlayIP on Flat.
	PublicIP netip.Addr
	Iface    string
	// Dir is <WorkDir>/<Name>: agent.log and subnet.env live there.
	Dir        string
	SubnetFile string
	// MachineIDFile is the node's own machine id, seen by its agents at
	// /etc/machine-id (see StartAgent).
	MachineIDFile string
	Pods          []*Pod
	// Subnet is the subnet file as last read by WaitSubnetFile.
	Subnet SubnetEnv

	agent *Agent // the latest agent started on the node
}

// Pod is a namespace attached to its node's cni0 bridge by the CNI chain.
type Pod struct {
	Name string // "node0/pod1"
	Node string
	NS   string // also its CNI_CONTAINERID
	// IP is the pod's IPv4 address; IP6 its IPv6 address when the subnet
	// file has an IPv6 subnet. An IPv6-only pod has no IP.
	IP  netip.Addr
	IP6 netip.Addr
	// CNIResult is the chain's ADD result, passed back on DEL.
	CNIResult []byte
	// Ports are the pod's host ports (AddPodWithPorts).
	Ports []PortMapping
}

func (p *Pod) String() string {
	switch {
	case !p.IP6.IsValid():
		return fmt.Sprintf("%s(%s)", p.Name, p.IP)
	case !p.IP.IsValid():
		return fmt.Sprintf("%s(%s)", p.Name, p.IP6)
	}
	return fmt.Sprintf("%s(%s,%s)", p.Name, p.IP, p.IP6)
}

// Addr is the pod's address of one family: IP6 when ipv6, else IP.
func (p *Pod) Addr(ipv6 bool) netip.Addr {
	if ipv6 {
		return p.IP6
	}
	return p.IP
}

// New builds the underlay, the hub and the etcd proxy. On error it
// removes whatever it had already made.
func New(ctx context.Context, opts Options) (*Lab, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	plans, sites, err := planNodes(opts)
	if err != nil {
		return nil, err
	}
	l := &Lab{Topology: opts.Topology, Network: opts.Network, opts: opts, log: opts.Logger}
	if err := l.build(ctx, plans, sites); err != nil {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up partial lab: %w", cerr))
		}
		return nil, err
	}
	l.log.Info("lab ready", "topology", l.Topology, "nodes", len(l.Nodes), "hub", l.Hub, "etcd", l.EtcdURL, "workdir", l.WorkDir)
	return l, nil
}

func (l *Lab) build(ctx context.Context, plans []nodePlan, sites [][]int) error {
	if err := l.makeWorkDir(); err != nil {
		return err
	}
	if err := l.makeNodes(plans); err != nil {
		return err
	}
	var err error
	if l.Topology == Flat {
		err = l.buildFlat(ctx)
	} else {
		err = l.buildNAT(ctx, sites)
	}
	if err != nil {
		return err
	}
	if l.opts.NoEtcdProxy {
		l.EtcdURL = ""
		return nil
	}
	return l.startProxy()
}

func (l *Lab) makeWorkDir() error {
	l.WorkDir = l.opts.WorkDir
	if l.WorkDir == "" {
		dir, err := os.MkdirTemp("", "overlayd-lab-")
		if err != nil {
			return fmt.Errorf("lab work dir: %w", err)
		}
		l.WorkDir, l.ownsWorkDir = dir, true
	}
	if err := os.MkdirAll(l.WorkDir, 0o755); err != nil {
		return fmt.Errorf("lab work dir %s: %w", l.WorkDir, err)
	}
	return nil
}

// makeNodes fills l.Nodes from the plan and creates their directories;
// the namespaces come with the underlay.
func (l *Lab) makeNodes(plans []nodePlan) error {
	for _, p := range plans {
		name := fmt.Sprintf("node%d", p.index)
		dir := filepath.Join(l.WorkDir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("node %s work dir: %w", name, err)
		}
		n := &Node{
			Index:       p.index,
			Name:        name,
			UnderlayIP:  p.underlay,
			UnderlayIP6: p.underlay6,
			PublicIP:    p.public,
			Iface:       UnderlayIface,
			Dir:         dir,
			SubnetFile:  filepath.Join(dir, "subnet.env"),
		}
		if l.opts.NoUnderlay4 {
			n.UnderlayIP, n.PublicIP = p.underlay6, p.underlay6
		}
		if err := writeMachineID(n); err != nil {
			return err
		}
		l.Nodes = append(l.Nodes, n)
	}
	return nil
}

// createNS creates a uniquely named namespace and records it for Close.
func (l *Lab) createNS(tag string) (string, error) {
	name := netnsutil.UniqueName(tag)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", errors.New("lab is closed")
	}
	if err := netnsutil.Create(name); err != nil {
		return "", err
	}
	l.namespaces = append(l.namespaces, name)
	return name, nil
}

// Namespaces lists every namespace the lab created (hub, routers, nodes,
// pods), in creation order.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.namespaces...)
}

// Close kills every agent, stops the proxy and deletes every namespace
// (and every process left inside). It is idempotent.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	agents, namespaces, p := l.agents, l.namespaces, l.proxy
	l.mu.Unlock()

	var errs []error
	for _, a := range agents {
		a.Kill()
	}
	if p != nil {
		p.Close()
	}
	for i := len(namespaces) - 1; i >= 0; i-- {
		if err := netnsutil.Delete(namespaces[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if l.ownsWorkDir {
		if err := os.RemoveAll(l.WorkDir); err != nil {
			errs = append(errs, fmt.Errorf("remove lab work dir: %w", err))
		}
	}
	return errors.Join(errs...)
}
