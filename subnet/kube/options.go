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
	// Network is the network config's IPv4 Network: our podCIDR must lie
	// inside it.
	Network netip.Prefix
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
	if !o.Network.IsValid() || !o.Network.Addr().Is4() {
		errs = append(errs, fmt.Errorf("kube subnet manager: Network %s is not an IPv4 prefix", o.Network))
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
