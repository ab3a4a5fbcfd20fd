package kube

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/overlayd/overlayd/subnet"
)

// OwnNode is what the daemon learns from its own Node before it creates
// the VXLAN device and publishes its lease.
type OwnNode struct {
	Name string
	// PodCIDR is the node's IPv4 pod CIDR: our lease's subnet (invalid
	// when IPv4 is off).
	PodCIDR netip.Prefix
	// IPv6PodCIDR is the node's IPv6 pod CIDR (spec.podCIDRs): our lease's
	// IPv6Subnet when IPv6 is on, invalid otherwise.
	IPv6PodCIDR netip.Prefix
	// PublicIPv6Overwrite is the user's public-ipv6-overwrite annotation;
	// invalid when unset.
	PublicIPv6Overwrite netip.Addr
	// NodePublicIPv6 is the user's node-public-ipv6 annotation, read at
	// start in place of --public-ipv6 as flanneld does; invalid when unset.
	NodePublicIPv6 netip.Addr
	// PublicIPOverwrite is the user's public-ip-overwrite annotation, to
	// advertise instead of the detected address; invalid when unset.
	PublicIPOverwrite netip.Addr
	// NodePublicIP is the user's node-public-ip annotation, which flanneld
	// reads at start in place of --public-ip (its interface is then chosen
	// for that address too); invalid when unset.
	NodePublicIP netip.Addr
	// Previous holds the lease attributes the node is annotated with now,
	// by an earlier run of overlayd or flanneld: BackendData keeps the
	// VTEP MAC peers already have. Zero when not annotated.
	Previous subnet.LeaseAttrs
}

// checkOwnNode validates our node against the network config: it must
// have a podCIDR inside Network (IPv4 on) and one inside IPv6Network (IPv6
// on). The errors say what to fix.
func (o *Options) checkOwnNode(n *corev1.Node) (OwnNode, error) {
	own := OwnNode{Name: n.Name, PublicIPOverwrite: parseIP(n.Annotations[o.Annotations.PublicIPOverwrite], true),
		NodePublicIP:        parseIP(n.Annotations[o.Annotations.NodePublicIP], true),
		PublicIPv6Overwrite: parseIP(n.Annotations[o.Annotations.PublicIPv6Overwrite], false),
		NodePublicIPv6:      parseIP(n.Annotations[o.Annotations.NodePublicIPv6], false)}
	var err error
	if o.Network.IsValid() {
		if own.PodCIDR, err = o.ownPodCIDR(n, o.Network, true); err != nil {
			return OwnNode{}, err
		}
	}
	if o.IPv6Network.IsValid() {
		if own.IPv6PodCIDR, err = o.ownPodCIDR(n, o.IPv6Network, false); err != nil {
			return OwnNode{}, err
		}
	}
	if prev, err := o.Annotations.nodeAttrs(fieldsOf(n)); err == nil {
		own.Previous = prev
	}
	return own, nil
}

// ownPodCIDR is our node's pod CIDR of one family, inside network.
func (o *Options) ownPodCIDR(n *corev1.Node, network netip.Prefix, want4 bool) (netip.Prefix, error) {
	cidr, ok, err := nodePodCIDROf(fieldsOf(n), want4)
	if err != nil {
		return netip.Prefix{}, err
	}
	field, family, other := "Network", "IPv4", "IPv6"
	if !want4 {
		field, family, other = "IPv6Network", "IPv6", "IPv4"
	}
	if !ok {
		if cidrs := podCIDRs(fieldsOf(n)); len(cidrs) > 0 {
			return netip.Prefix{}, fmt.Errorf("node %q has only %s podCIDRs %v: the network config enables %s, so the node needs an %s podCIDR (an %s or dual-stack --cluster-cidr)",
				n.Name, other, cidrs, family, family, family)
		}
		return netip.Prefix{}, fmt.Errorf("node %q has no podCIDR: was kube-controller-manager started with --allocate-node-cidrs and --cluster-cidr (kubeadm init --pod-network-cidr)?", n.Name)
	}
	if !network.Contains(cidr.Addr()) || cidr.Bits() < network.Bits() {
		return netip.Prefix{}, fmt.Errorf("node %q podCIDR %s is outside the network config's %s %s: make kube-controller-manager's --cluster-cidr (kubeadm --pod-network-cidr) and %s in net-conf.json the same", n.Name, cidr, field, network, field)
	}
	return cidr, nil
}

// WaitForNode gets our node (o.NodeName) until it exists and has a usable
// podCIDR, retrying every RetryInterval and logging what to fix (an
// unreachable API server, missing RBAC, a node without podCIDR, a podCIDR
// outside Network). Only the end of ctx stops it.
func WaitForNode(ctx context.Context, o Options) (OwnNode, error) {
	if err := o.validate(); err != nil {
		return OwnNode{}, err
	}
	var own OwnNode
	var node *corev1.Node
	err := o.retrier().do(ctx, "waiting for this node's podCIDR", func(ctx context.Context) error {
		var err error
		node, own, err = o.readOwnNode(ctx)
		return err
	})
	if err != nil {
		return OwnNode{}, err
	}
	for key, parsed := range map[string]netip.Addr{o.Annotations.PublicIPOverwrite: own.PublicIPOverwrite, o.Annotations.NodePublicIP: own.NodePublicIP} {
		if s := node.Annotations[key]; s != "" && !parsed.IsValid() {
			o.Logger.Warn("ignoring a node annotation: not an IPv4 address", "node", node.Name, "annotation", key, "value", s)
		}
	}
	for key, parsed := range map[string]netip.Addr{o.Annotations.PublicIPv6Overwrite: own.PublicIPv6Overwrite, o.Annotations.NodePublicIPv6: own.NodePublicIPv6} {
		if s := node.Annotations[key]; s != "" && !parsed.IsValid() {
			o.Logger.Warn("ignoring a node annotation: not an IPv6 address", "node", node.Name, "annotation", key, "value", s)
		}
	}
	return own, nil
}

// readOwnNode reads our node and checks what the lease is read from.
func (o *Options) readOwnNode(ctx context.Context) (*corev1.Node, OwnNode, error) {
	n, err := o.getNode(ctx)
	if err != nil {
		return nil, OwnNode{}, err
	}
	own, err := o.checkOwnNode(n)
	return n, own, err
}

// getNode reads our node with a bounded wait, explaining API errors.
func (o *Options) getNode(ctx context.Context) (*corev1.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
	defer cancel()
	n, err := o.Client.GetNode(ctx, o.NodeName)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("node %q does not exist (yet?): the kubelet registers it; is NODE_NAME (or the pod's spec.nodeName) the Node's name? %w", o.NodeName, err)
	}
	if err != nil {
		return nil, explainAPIError(err, "get node "+o.NodeName)
	}
	return n, nil
}
