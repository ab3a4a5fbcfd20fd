package etcdv2

import (
	"errors"
	"fmt"
	"time"

	client "go.etcd.io/etcd/client/v2"

	"github.com/overlayd/overlayd/subnet"
)

// encodeLease returns the value to store: the v0.11 form, or the v0.28
// form when attrs carry IPv6 attributes that v0.11 cannot express.
func encodeLease(attrs subnet.LeaseAttrs) ([]byte, error) {
	form := subnet.FormV011
	if attrs.PublicIPv6.IsValid() || len(attrs.BackendV6Data) > 0 {
		form = subnet.FormV028
	}
	return subnet.MarshalLeaseAttrs(attrs, form)
}

// decodeNode turns one v2 node into a Lease. Any error names the key;
// callers report it as a SkippedKey.
func (r *Registry) decodeNode(before time.Time, node *client.Node) (subnet.Lease, error) {
	if node == nil {
		return subnet.Lease{}, errors.New("event without node")
	}
	if node.Dir {
		return subnet.Lease{}, fmt.Errorf("lease key %s is a directory", node.Key)
	}
	id, err := subnet.ParseLeaseIDKey(r.prefix, node.Key)
	if err != nil {
		return subnet.Lease{}, err
	}
	attrs, err := subnet.UnmarshalLeaseAttrs([]byte(node.Value))
	if err != nil {
		return subnet.Lease{}, fmt.Errorf("lease %s: %w", node.Key, err)
	}
	return subnet.Lease{Subnet: id.Subnet, IPv6Subnet: id.IPv6Subnet, Attrs: attrs, Expiration: expiration(before, node), Created: int64(node.CreatedIndex)}, nil
}

// expiration is when the node's TTL runs out on our clock: before (our
// time just before the request) plus the TTL etcd says remains, rounded
// down. etcd's absolute Expiration is its own wall clock, which skew
// would move; zero for a key without TTL.
func expiration(before time.Time, node *client.Node) time.Time {
	if node == nil || node.Expiration == nil {
		return time.Time{}
	}
	return before.Add(time.Duration(node.TTL) * time.Second)
}

// ttlSeconds rounds ttl up to whole seconds (v2 TTLs are whole seconds and
// the client would round down).
func ttlSeconds(ttl time.Duration) (time.Duration, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("TTL %s: must be positive", ttl)
	}
	return (ttl + time.Second - 1).Truncate(time.Second), nil
}
