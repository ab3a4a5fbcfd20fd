package kube

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultAnnotationPrefix is flannel's --kube-annotation-prefix default.
const DefaultAnnotationPrefix = "flannel.alpha.coreos.com"

// Annotations are the node annotation keys of one prefix.
type Annotations struct {
	// Prefix is what every key starts with ("flannel.alpha.coreos.com/",
	// "example.com/x-").
	Prefix string
	// SubnetKubeManaged is "true" on every node whose agent manages its
	// lease this way; only such nodes are peers.
	SubnetKubeManaged string
	BackendType       string
	// BackendData is the lease's BackendData JSON as a string.
	BackendData string
	// PublicIP is the advertised address the agent wrote.
	PublicIP string
	// PublicIPOverwrite is set by the user: the address to advertise
	// instead of the detected one (e.g. a node's 1:1 NAT address).
	PublicIPOverwrite string
	// NodePublicIP is set by the user: read at start in place of
	// --public-ip, as flanneld does.
	NodePublicIP        string
	BackendV6Data       string
	PublicIPv6          string
	PublicIPv6Overwrite string
	// NodePublicIPv6 is set by the user: read at start in place of
	// --public-ipv6, as flanneld does.
	NodePublicIPv6 string
	// PrivateIP is overlayd's extension (subnet.LeaseAttrs.PrivateIP): the
	// address the VXLAN device binds, published only behind NAT.
	PrivateIP string
	// SameSiteKey is overlayd's extension (subnet.LeaseAttrs.SameSiteKey):
	// the node's same-site public key in base64, published behind NAT.
	SameSiteKey string
}

// NewAnnotations returns the keys under prefix, formed as flanneld forms
// them: a prefix without a slash is a domain, and keys are
// "<prefix>/<name>"; a prefix with one slash ("example.com/x") keeps its
// name part, and keys are "example.com/x-<name>" ("example.com/" gives
// "example.com/<name>"). Every key must be a valid annotation key.
func NewAnnotations(prefix string) (Annotations, error) {
	given := prefix
	if prefix == "" {
		return Annotations{}, fmt.Errorf("annotation prefix is empty: use e.g. %q", DefaultAnnotationPrefix)
	}
	switch strings.Count(prefix, "/") {
	case 0:
		prefix += "/"
	case 1:
	default:
		return Annotations{}, fmt.Errorf("annotation prefix %q has more than one slash", prefix)
	}
	if !strings.HasSuffix(prefix, "/") && !strings.HasSuffix(prefix, "-") {
		prefix += "-"
	}
	key := func(name string) string { return prefix + name }
	if errs := validation.IsQualifiedName(key("backend-data")); len(errs) > 0 {
		return Annotations{}, fmt.Errorf("annotation prefix %q does not make valid annotation keys (%q): %s", given, key("backend-data"), strings.Join(errs, "; "))
	}
	return Annotations{
		Prefix:              prefix,
		SubnetKubeManaged:   key("kube-subnet-manager"),
		BackendType:         key("backend-type"),
		BackendData:         key("backend-data"),
		PublicIP:            key("public-ip"),
		PublicIPOverwrite:   key("public-ip-overwrite"),
		NodePublicIP:        key("node-public-ip"),
		BackendV6Data:       key("backend-v6-data"),
		PublicIPv6:          key("public-ipv6"),
		PublicIPv6Overwrite: key("public-ipv6-overwrite"),
		NodePublicIPv6:      key("node-public-ipv6"),
		PrivateIP:           key("overlayd-private-ip"),
		SameSiteKey:         key("overlayd-samesite-key"),
	}, nil
}
