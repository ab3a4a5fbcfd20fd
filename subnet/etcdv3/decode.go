package etcdv3

import (
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/subnet"
)

// decodeLease turns one key/value into a Lease. Any error names the key;
// callers report it as a SkippedKey.
func (r *Registry) decodeLease(kv *mvccpb.KeyValue) (subnet.Lease, error) {
	key, value, leaseID := kv.Key, kv.Value, kv.Lease
	id, err := subnet.ParseLeaseIDKey(r.prefix, string(key))
	if err != nil {
		return subnet.Lease{}, err
	}
	attrs, err := subnet.UnmarshalLeaseAttrs(value)
	if err != nil {
		return subnet.Lease{}, fmt.Errorf("lease %s: %w", key, err)
	}
	return subnet.Lease{
		Subnet:     id.Subnet,
		IPv6Subnet: id.IPv6Subnet,
		Attrs:      attrs,
		Expiration: r.granted.expiration(clientv3.LeaseID(leaseID)),
		Created:    kv.CreateRevision,
	}, nil
}
