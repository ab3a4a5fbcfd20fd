package kube

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/subnet"
)

// Defaults of Options.
const (
	DefaultRetryInterval   = 2 * time.Second
	DefaultRecheckInterval = time.Minute
	DefaultRequestTimeout  = 15 * time.Second
)

// Options configure WaitForNode and NewManager.
type Options struct {
	// Client reaches the API server (NewClient).
	Client Client
	// NodeName is our Node (see ResolveNodeName).
	NodeName    string
	Annotations Annotations
	// Network is the network config's IPv4 Network (invalid when IPv4 is
	// off): our IPv4 podCIDR must lie inside it.
	Network netip.Prefix
	// IPv6Network is the config's IPv6Network, invalid when IPv6 is off:
	// our IPv6 podCIDR must lie inside it and becomes our IPv6Subnet.
	IPv6Network netip.Prefix
	// Attrs is the lease we publish (NewManager only): PublicIP is the
	// detected or --public-ip address (the node's public-ip-overwrite
	// replaces it), BackendType and BackendData (the VTEP MAC), PrivateIP
	// behind NAT.
	Attrs subnet.LeaseAttrs
	// RetryInterval spaces retries after errors (default 2s).
	RetryInterval time.Duration
	// RecheckInterval is how often RunRenewal re-reads our node besides
	// when the watch sees it change (default 1m).
	RecheckInterval time.Duration
	// RequestTimeout bounds each get and patch (default 15s).
	RequestTimeout time.Duration
	Logger         *slog.Logger
	Clock          subnet.Clock
	// Registerer receives the overlayd_kube_* metrics; nil: not exported.
	Registerer prometheus.Registerer
	// LeaveNetworkUnavailable (--set-node-network-unavailable=false) leaves
	// the Node's NetworkUnavailable condition to somebody else.
	LeaveNetworkUnavailable bool
}

func (o *Options) validate() error {
	var errs []error
	if o.Client == nil {
		errs = append(errs, errors.New("kube subnet manager: no Kubernetes client"))
	}
	if o.NodeName == "" {
		errs = append(errs, errors.New("kube subnet manager: NodeName is empty"))
	}
	if o.Annotations.SubnetKubeManaged == "" {
		errs = append(errs, errors.New("kube subnet manager: Annotations not set (use NewAnnotations)"))
	}
	if o.Network.IsValid() && !o.Network.Addr().Is4() || !o.Network.IsValid() && !o.IPv6Network.IsValid() {
		errs = append(errs, fmt.Errorf("kube subnet manager: Network %s is not an IPv4 prefix", o.Network))
	}
	if o.IPv6Network.IsValid() && (!o.IPv6Network.Addr().Is6() || o.IPv6Network.Addr().Is4In6()) {
		errs = append(errs, fmt.Errorf("kube subnet manager: IPv6Network %s is not an IPv6 prefix", o.IPv6Network))
	}
	o.applyDefaults()
	return errors.Join(errs...)
}

// applyDefaults fills the zero tunables.
func (o *Options) applyDefaults() {
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.RecheckInterval <= 0 {
		o.RecheckInterval = DefaultRecheckInterval
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = subnet.RealClock()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
}
