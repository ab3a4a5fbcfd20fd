package kube

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/overlayd/overlayd/subnet"
)

// errNotManaged: the node does not carry kube-subnet-manager "true", so it
// is no peer of ours (no agent, or an agent with another prefix).
var errNotManaged = errors.New("not managed by a kube subnet manager")

// nodeFields is what a lease is read from: a Node's name, annotations
// and podCIDRs (of a whole *corev1.Node, or of the nodeEntry a watch
// keeps).
type nodeFields struct {
	name     string
	created  time.Time // creationTimestamp
	ann      map[string]string
	podCIDR  string
	podCIDRs []string
}

func fieldsOf(n *corev1.Node) nodeFields {
	return nodeFields{name: n.Name, created: n.CreationTimestamp.Time, ann: n.Annotations,
		podCIDR: n.Spec.PodCIDR, podCIDRs: n.Spec.PodCIDRs}
}

// nodePodCIDR returns the node's IPv4 pod CIDR: the IPv4 entry of
// spec.podCIDRs (dual-stack), else spec.podCIDR. ok is false when the node
// has none (yet).
func nodePodCIDR(n nodeFields) (p netip.Prefix, ok bool, err error) {
	return nodePodCIDROf(n, true)
}

// nodeIPv6PodCIDR returns the node's IPv6 pod CIDR: the IPv6 entry of
// spec.podCIDRs, or spec.podCIDR when only that is set and is IPv6.
func nodeIPv6PodCIDR(n nodeFields) (p netip.Prefix, ok bool, err error) {
	return nodePodCIDROf(n, false)
}

func nodePodCIDROf(n nodeFields, want4 bool) (netip.Prefix, bool, error) {
	for _, s := range podCIDRs(n) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false, fmt.Errorf("node %q: podCIDR %q is not a CIDR: %w", n.name, s, err)
		}
		if p.Addr().Is4() == want4 {
			return p.Masked(), true, nil
		}
	}
	return netip.Prefix{}, false, nil
}

// podCIDRs is spec.podCIDRs, or spec.podCIDR when only that is set.
func podCIDRs(n nodeFields) []string {
	if len(n.podCIDRs) == 0 && n.podCIDR != "" {
		return []string{n.podCIDR}
	}
	return n.podCIDRs
}

// NodeLease turns a node whose agent manages its lease in annotations
// (kube-subnet-manager "true") into its lease: Subnet is the IPv4 podCIDR
// when the node publishes an IPv4 public-ip (public-ip-overwrite when it
// holds a valid address: the user's word wins), IPv6Subnet the IPv6
// podCIDR when it publishes public-ipv6 (or public-ipv6-overwrite); the
// attributes come from backend-type, backend-data, backend-v6-data, the
// public addresses and overlayd's private-ip; Created is the Node's
// creationTimestamp. Expiration is zero: such a lease lives as long as the
// Node. The error names the node and the annotation at fault when neither
// family is usable; errors.Is(err, errNotManaged) for nodes that are not
// peers at all.
func (a Annotations) NodeLease(n *corev1.Node) (subnet.Lease, error) {
	return a.leaseOf(fieldsOf(n))
}

func (a Annotations) leaseOf(n nodeFields) (subnet.Lease, error) {
	if n.ann[a.SubnetKubeManaged] != "true" {
		return subnet.Lease{}, fmt.Errorf("node %q: %w", n.name, errNotManaged)
	}
	attrs, err := a.nodeAttrs(n)
	if err != nil {
		return subnet.Lease{}, err
	}
	lease := subnet.Lease{Attrs: attrs}
	v6, ok6, err := nodeIPv6PodCIDR(n)
	if err != nil {
		return subnet.Lease{}, err
	}
	if ok6 && attrs.PublicIPv6.IsValid() {
		lease.IPv6Subnet = v6
	}
	if lease.Subnet, err = a.ipv4Part(n, attrs); err != nil {
		if !lease.IPv6Subnet.IsValid() {
			return subnet.Lease{}, err
		}
		lease.Subnet = netip.Prefix{} // an IPv6-only peer
	}
	if !n.created.IsZero() {
		lease.Created = n.created.UnixNano()
	}
	return lease, nil
}

// ipv4Part is the node's IPv4 podCIDR, when it has one and a valid IPv4
// public-ip; the error says which is missing.
func (a Annotations) ipv4Part(n nodeFields, attrs subnet.LeaseAttrs) (netip.Prefix, error) {
	cidr, ok, err := nodePodCIDR(n)
	if err != nil {
		return netip.Prefix{}, err
	}
	if !ok {
		return netip.Prefix{}, fmt.Errorf("node %q is annotated %s=true but has no IPv4 podCIDR", n.name, a.SubnetKubeManaged)
	}
	if !attrs.PublicIP.IsValid() {
		return netip.Prefix{}, fmt.Errorf("node %q: annotation %s %q is not an IPv4 address", n.name, a.PublicIP, n.ann[a.PublicIP])
	}
	return cidr, nil
}

func (a Annotations) nodeAttrs(n nodeFields) (subnet.LeaseAttrs, error) {
	ann := n.ann
	attrs := subnet.LeaseAttrs{BackendType: ann[a.BackendType]}
	var err error
	if attrs.BackendData, err = rawJSON(n, a.BackendData); err != nil {
		return attrs, err
	}
	if attrs.BackendV6Data, err = rawJSON(n, a.BackendV6Data); err != nil {
		return attrs, err
	}
	attrs.PublicIP = overwrittenIP(ann[a.PublicIPOverwrite], ann[a.PublicIP], true)
	attrs.PublicIPv6 = overwrittenIP(ann[a.PublicIPv6Overwrite], ann[a.PublicIPv6], false)
	attrs.PrivateIP = parseIP(ann[a.PrivateIP], true)
	// A key that does not decode is no key: no same-site path to the node.
	attrs.SameSiteKey, _ = subnet.DecodeSameSiteKey(ann[a.SameSiteKey])
	return attrs, nil
}

// rawJSON returns the annotation as raw JSON; empty when unset.
func rawJSON(n nodeFields, key string) (json.RawMessage, error) {
	s := n.ann[key]
	if s == "" {
		return nil, nil
	}
	if !json.Valid([]byte(s)) {
		return nil, fmt.Errorf("node %q: annotation %s %q is not JSON", n.name, key, truncate(s))
	}
	return json.RawMessage(s), nil
}

// overwrittenIP is the overwrite when valid, else the plain value;
// invalid when neither is a valid address of the family.
func overwrittenIP(overwrite, plain string, want4 bool) netip.Addr {
	if ip := parseIP(overwrite, want4); ip.IsValid() {
		return ip
	}
	return parseIP(plain, want4)
}

// parseIP parses an IPv4 (want4) or IPv6 address; invalid otherwise.
func parseIP(s string, want4 bool) netip.Addr {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" || ip.Is4() != want4 || ip.Is4In6() {
		return netip.Addr{}
	}
	return ip
}

func truncate(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
