package migrate

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// EtcdV3 is the Destination on an etcd v3 client (etcdv3.Registry.Client
// gives one with the daemon's TLS and credentials).
type EtcdV3 struct {
	client *clientv3.Client
}

var _ Destination = (*EtcdV3)(nil)

// NewEtcdV3 returns a Destination writing through c.
func NewEtcdV3(c *clientv3.Client) *EtcdV3 { return &EtcdV3{client: c} }

// Get implements Destination.
func (d *EtcdV3) Get(ctx context.Context, key string) (Entry, error) {
	resp, err := d.client.Get(ctx, key)
	if err != nil {
		return Entry{}, err
	}
	if len(resp.Kvs) == 0 {
		return Entry{}, nil
	}
	kv := resp.Kvs[0]
	return Entry{Value: kv.Value, ModRevision: kv.ModRevision, HasLease: kv.Lease != 0}, nil
}

// Put implements Destination: one transaction comparing the key's
// ModRevision (0 for a missing key), putting it with a fresh etcd lease
// when ttl > 0. A grant left unused by a failed comparison is revoked.
func (d *EtcdV3) Put(ctx context.Context, key string, value []byte, ttl time.Duration, ifModRevision int64) error {
	var opts []clientv3.OpOption
	lease := clientv3.NoLease
	if ttl > 0 {
		seconds := int64((ttl + time.Second - 1) / time.Second)
		grant, err := d.client.Grant(ctx, seconds)
		if err != nil {
			return fmt.Errorf("grant etcd lease of %ds: %w", seconds, err)
		}
		lease = grant.ID
		opts = append(opts, clientv3.WithLease(lease))
	}
	resp, err := d.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", ifModRevision)).
		Then(clientv3.OpPut(key, string(value), opts...)).
		Commit()
	if err != nil {
		// The put may have happened: keep the grant; unused, it expires.
		return fmt.Errorf("transaction on %s: %w", key, err)
	}
	if !resp.Succeeded {
		d.revoke(ctx, lease)
		return ErrChanged
	}
	return nil
}

func (d *EtcdV3) revoke(ctx context.Context, lease clientv3.LeaseID) {
	if lease == clientv3.NoLease {
		return
	}
	// Best effort: an unused lease expires on its own.
	d.client.Revoke(ctx, lease)
}
