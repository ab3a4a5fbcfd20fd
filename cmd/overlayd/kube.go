package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/kube"
	"github.com/overlayd/overlayd/vxlandata"
)

// netConfRetry is how often an absent or invalid --net-config-path is
// read again (docs/compatibility.md: the config is retried every second).
const netConfRetry = time.Second

// kubeOptions are the --kube-subnet-mgr flags after validation.
type kubeOptions struct {
	enabled     bool
	apiURL      string // --kube-api-url
	kubeconfig  string // --kubeconfig-file
	netConfPath string // --net-config-path
	annotations kube.Annotations
	// leaveNetworkUnavailable is --set-node-network-unavailable=false.
	leaveNetworkUnavailable bool
}

// validateKube checks the kube flags (called by validate in flags.go).
func validateKube(r rawFlags, bad func(string, ...any)) kubeOptions {
	k := kubeOptions{enabled: r.kubeSubnetMgr, apiURL: r.kubeAPIURL, kubeconfig: r.kubeconfigFile, netConfPath: r.netConfPath,
		leaveNetworkUnavailable: !r.setNodeNetworkUnavailable}
	ann, err := kube.NewAnnotations(r.kubeAnnotationPrefix)
	if err != nil {
		bad("--kube-annotation-prefix: %v", err)
	}
	k.annotations = ann
	if r.kubeAPIURL != "" {
		if u, err := url.Parse(r.kubeAPIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("--kube-api-url: %q is not an https:// (or http://) URL", r.kubeAPIURL)
		}
	}
	if r.kubeSubnetMgr && r.netConfPath == "" {
		bad("--net-config-path: must not be empty with --kube-subnet-mgr")
	}
	return k
}

// kubeSource is the lease source of --kube-subnet-mgr: the lease is kept
// in our Node's annotations by a kube.Manager, made by acquire.
type kubeSource struct {
	acquired
	opts kube.Options // everything but Attrs, known once the device exists
	own  kube.OwnNode
	log  *slog.Logger
}

func (s *kubeSource) api() string  { return "" }
func (s *kubeSource) Close() error { return nil }

// backendData is always the v0.28 form: kube-flannel writes the VNI.
func (s *kubeSource) backendData(d vxlandata.Data) ([]byte, error) { return vxlandata.Marshal(d, true) }

// openKubeSource is openSource for --kube-subnet-mgr: the network config
// comes from --net-config-path, the node from NODE_NAME (or the pod), the
// subnet from its podCIDR and the advertised address from its
// public-ip-overwrite when set (it replaces --public-ip in d.opts).
func (d *daemon) openKubeSource(ctx context.Context, clock subnet.Clock) (leaseSource, *subnet.Config, error) {
	o, log := d.opts.kube, d.log
	// client-go logs through klog: send it to our logger, not stderr.
	klog.SetSlogLogger(log.With("component", "client-go"))
	cfg, err := waitForNetConf(ctx, o.netConfPath, clock, log)
	if err != nil {
		return nil, nil, err
	}
	client, host, err := kube.NewClient(kube.ClientOptions{APIURL: o.apiURL, Kubeconfig: o.kubeconfig, UserAgent: "overlayd/" + version})
	if err != nil {
		return nil, nil, fmt.Errorf("--kube-subnet-mgr: %w", err)
	}
	log.Info("kube subnet manager", "api_server", host, "annotation_prefix", o.annotations.Prefix, "net_config", o.netConfPath)
	kopts := kube.Options{
		Client: client, Annotations: o.annotations, Network: cfg.Network, IPv6Network: cfg.IPv6Network,
		Logger: log, Clock: clock, Registerer: d.reg, LeaveNetworkUnavailable: o.leaveNetworkUnavailable,
	}
	if !cfg.EnableIPv4 {
		kopts.Network = netip.Prefix{}
	}
	if !cfg.EnableIPv6 {
		kopts.IPv6Network = netip.Prefix{}
	}
	if kopts.NodeName, err = kube.ResolveNodeName(ctx, kopts, os.Getenv); err != nil {
		return nil, nil, fmt.Errorf("--kube-subnet-mgr: %w", err)
	}
	own, err := kube.WaitForNode(ctx, kopts)
	if err != nil {
		return nil, nil, err
	}
	log.Info("node found", "node", own.Name, "podCIDR", own.PodCIDR, "ipv6_podCIDR", own.IPv6PodCIDR)
	adoptPublicIP(log, own.Name, "public-ip", &d.opts.publicIP, own.NodePublicIP, own.PublicIPOverwrite)
	adoptPublicIP(log, own.Name, "public-ipv6", &d.opts.publicIPv6, own.NodePublicIPv6, own.PublicIPv6Overwrite)
	return &kubeSource{opts: kopts, own: own, log: log}, cfg, nil
}

// adoptPublicIP sets *flag (--public-ip or --public-ipv6, named by name)
// from our Node's annotations: node-<name>, which flanneld reads at start
// in place of the flag, then <name>-overwrite, which wins.
func adoptPublicIP(log *slog.Logger, node, name string, flag *netip.Addr, nodePublic, overwrite netip.Addr) {
	key := strings.ReplaceAll(name, "-", "_")
	if nodePublic.IsValid() {
		log.Info("using the node's node-"+name+" annotation as --"+name, "node", node, key, nodePublic)
		*flag = nodePublic
	}
	if overwrite.IsValid() {
		log.Info("advertising the node's "+name+"-overwrite annotation", "node", node, key, overwrite)
		*flag = overwrite
	}
}

// waitForNetConf reads and validates the network config file, retrying
// every second (logging each new problem) until it is usable.
func waitForNetConf(ctx context.Context, path string, clock subnet.Clock, log *slog.Logger) (*subnet.Config, error) {
	var last string
	for {
		cfg, err := readNetConf(path)
		if err == nil {
			return cfg, nil
		}
		if err.Error() != last {
			log.Warn("network config not usable yet; retrying every second", "path", path, "err", err)
			last = err.Error()
		}
		t := clock.NewTimer(netConfRetry)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

func readNetConf(path string) (*subnet.Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--net-config-path %s does not exist (the DaemonSet mounts net-conf.json from its ConfigMap): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("--net-config-path: %w", err)
	}
	cfg, err := subnet.ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("--net-config-path %s: %w", path, err)
	}
	return cfg, nil
}

// previousVtepMAC is the MAC in our node's backend-data annotation, left
// by an earlier run of overlayd or flanneld, so that peers keep theirs.
// The node is ours by name, not by address: public is not consulted.
func (s *kubeSource) previousVtepMAC(_ context.Context, _ netip.Addr) []byte {
	return s.previousMAC(s.own.Previous.BackendData, "backend-data")
}

// previousV6VtepMAC is the MAC in our node's backend-v6-data annotation.
func (s *kubeSource) previousV6VtepMAC(_ context.Context, _ netip.Addr) []byte {
	return s.previousMAC(s.own.Previous.BackendV6Data, "backend-v6-data")
}

func (s *kubeSource) previousMAC(raw []byte, annotation string) []byte {
	if s.own.Previous.BackendType != subnet.BackendVXLAN || len(raw) == 0 {
		return nil
	}
	data, err := vxlandata.Unmarshal(raw)
	if err != nil {
		s.log.Warn("ignoring the node's "+annotation+" annotation: no usable VTEP MAC", "node", s.own.Name, "err", err)
		return nil
	}
	return data.VtepMAC
}

// acquire publishes attrs in our node's annotations.
func (s *kubeSource) acquire(ctx context.Context, attrs subnet.LeaseAttrs, _ subnet.SubnetEnv) (subnet.Lease, error) {
	opts := s.opts
	opts.Attrs = attrs
	mgr, err := kube.NewManager(opts)
	if err != nil {
		return subnet.Lease{}, err
	}
	s.set(mgr)
	lease, err := mgr.Acquire(ctx)
	if err != nil {
		return subnet.Lease{}, fmt.Errorf("publish the lease in node %s: %w", opts.NodeName, err)
	}
	return lease, nil
}
