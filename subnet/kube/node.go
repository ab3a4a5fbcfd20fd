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
	for _, s := range podCIDRs(n) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false, fmt.Errorf("node %q: podCIDR %q is not a CIDR: %w", n.name, s, err)
		}
		if p.Addr().Is4() {
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
// (kube-subnet-manager "true") into its lease: the subnet is the IPv4
// podCIDR; the attributes come from backend-type, backend-data, public-ip
// (public-ip-overwrite when it holds a valid address: the user's word
// wins), the IPv6 forms and overlayd's private-ip; Created is the Node's
// creationTimestamp. Expiration is zero:
// such a lease lives as long as the Node. The error names the node and
// the annotation at fault; errors.Is(err, errNotManaged) for nodes that
// are not peers at all.
func (a Annotations) NodeLease(n *corev1.Node) (subnet.Lease, error) {
	return a.leaseOf(fieldsOf(n))
}

func (a Annotations) leaseOf(n nodeFields) (subnet.Lease, error) {
	ann := n.ann
	if ann[a.SubnetKubeManaged] != "true" {
		return subnet.Lease{}, fmt.Errorf("node %q: %w", n.name, errNotManaged)
	}
	cidr, ok, err := nodePodCIDR(n)
	if err != nil {
		return subnet.Lease{}, err
	}
	if !ok {
		return subnet.Lease{}, fmt.Errorf("node %q is annotated %s=true but has no IPv4 podCIDR", n.name, a.SubnetKubeManaged)
	}
	attrs, err := a.nodeAttrs(n)
	if err != nil {
		return subnet.Lease{}, err
	}
	lease := subnet.Lease{Subnet: cidr, Attrs: attrs}
	if !n.created.IsZero() {
		lease.Created = n.created.UnixNano()
	}
	return lease, nil
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
	if !attrs.PublicIP.IsValid() {
		return attrs, fmt.Errorf("node %q: annotation %s %q is not an IPv4 address", n.name, a.PublicIP, ann[a.PublicIP])
	}
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
