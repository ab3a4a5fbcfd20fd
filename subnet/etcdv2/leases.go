package etcdv2

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	client "go.etcd.io/etcd/client/v2"

	"github.com/overlayd/overlayd/subnet"
)

// GetNetworkConfig returns the raw JSON at <prefix>/config.
func (r *Registry) GetNetworkConfig(ctx context.Context) ([]byte, error) {
	key := subnet.ConfigKey(r.prefix)
	resp, err := r.keys.Get(ctx, key, &client.GetOptions{Quorum: true})
	switch {
	case hasCode(err, client.ErrorCodeKeyNotFound):
		return nil, fmt.Errorf("etcd v2 get %s: %w", key, subnet.ErrConfigNotFound)
	case err != nil:
		return nil, fmt.Errorf("etcd v2 get %s: %w", key, r.explain(err))
	case resp.Node == nil || resp.Node.Dir:
		return nil, fmt.Errorf("etcd v2 get %s: is a directory, want the config JSON", key)
	}
	return []byte(resp.Node.Value), nil
}

// ListLeases reads every key in <prefix>/subnets/ in one request. A missing
// directory is an empty list. Malformed keys and values (and directories)
// are returned in Skipped, never as an error.
func (r *Registry) ListLeases(ctx context.Context) (subnet.LeaseList, error) {
	dir := subnetsDir(r.prefix)
	before := r.now()
	resp, err := r.keys.Get(ctx, dir, &client.GetOptions{Recursive: true, Quorum: true})
	if hasCode(err, client.ErrorCodeKeyNotFound) {
		return subnet.LeaseList{Revision: int64(errorIndex(err))}, nil
	}
	if err != nil {
		return subnet.LeaseList{}, fmt.Errorf("etcd v2 list %s: %w", dir, r.explain(err))
	}
	if resp.Node == nil || !resp.Node.Dir {
		return subnet.LeaseList{}, fmt.Errorf("etcd v2 list %s: is a key, want a directory of leases", dir)
	}
	list := subnet.LeaseList{Revision: int64(resp.Index)}
	for _, node := range resp.Node.Nodes {
		lease, err := r.decodeNode(before, node)
		if err != nil {
			list.Skipped = append(list.Skipped, subnet.SkippedKey{Key: node.Key, Reason: err})
			continue
		}
		list.Leases = append(list.Leases, lease)
	}
	return list, nil
}

// subnetsDir is <prefix>/subnets without the trailing slash, as v2 names
// directories.
func subnetsDir(prefix string) string { return strings.TrimSuffix(subnet.SubnetsDir(prefix), "/") }

// CreateLease sets the key with ttl only if it does not exist (v2
// prevExist=false); subnet.ErrLeaseExists otherwise.
func (r *Registry) CreateLease(ctx context.Context, sn subnet.LeaseID, attrs subnet.LeaseAttrs, ttl time.Duration) (time.Time, error) {
	expires, err := r.createLease(ctx, sn, attrs, ttl)
	if err != nil {
		return time.Time{}, fmt.Errorf("etcd v2 create lease %s: %w", sn, err)
	}
	return expires, nil
}

func (r *Registry) createLease(ctx context.Context, sn subnet.LeaseID, attrs subnet.LeaseAttrs, ttl time.Duration) (time.Time, error) {
	if err := ipv4Only(sn); err != nil {
		return time.Time{}, err
	}
	value, err := encodeLease(attrs)
	if err != nil {
		return time.Time{}, err
	}
	if ttl, err = ttlSeconds(ttl); err != nil {
		return time.Time{}, err
	}
	key := subnet.LeaseKey(r.prefix, sn.Subnet)
	before := r.now()
	resp, err := r.keys.Set(ctx, key, string(value), &client.SetOptions{PrevExist: client.PrevNoExist, TTL: ttl})
	switch {
	case hasCode(err, client.ErrorCodeNodeExist):
		return time.Time{}, subnet.ErrLeaseExists
	case err != nil:
		return time.Time{}, fmt.Errorf("set %s: %w", key, r.explain(err))
	}
	return expiration(before, resp.Node), nil
}

// updateAttempts bounds the retries when the key changes between reading
// it and the compare-and-swap.
const updateAttempts = 3

// UpdateLease rewrites lease's value with a compare-and-swap on the
// modified index it read, restarting the TTL. A reservation (a key without
// TTL) is written without TTL and stays one; the returned time is zero.
func (r *Registry) UpdateLease(ctx context.Context, lease subnet.Lease, ttl time.Duration) (time.Time, error) {
	expires, err := r.updateLease(ctx, lease, ttl)
	if err != nil {
		return time.Time{}, fmt.Errorf("etcd v2 update lease %s: %w", lease.ID(), err)
	}
	return expires, nil
}

func (r *Registry) updateLease(ctx context.Context, lease subnet.Lease, ttl time.Duration) (time.Time, error) {
	if err := ipv4Only(lease.ID()); err != nil {
		return time.Time{}, err
	}
	value, err := encodeLease(lease.Attrs)
	if err != nil {
		return time.Time{}, err
	}
	key := subnet.LeaseKey(r.prefix, lease.Subnet)
	for range updateAttempts {
		expires, done, err := r.compareAndSwap(ctx, key, string(value), ttl)
		if err != nil || done {
			return expires, err
		}
	}
	return time.Time{}, fmt.Errorf("%s kept changing during %d attempts", key, updateAttempts)
}

// compareAndSwap reads key and rewrites it if unchanged since; done is
// false when it changed in between.
func (r *Registry) compareAndSwap(ctx context.Context, key, value string, ttl time.Duration) (time.Time, bool, error) {
	current, err := r.keys.Get(ctx, key, &client.GetOptions{Quorum: true})
	switch {
	case hasCode(err, client.ErrorCodeKeyNotFound):
		return time.Time{}, false, subnet.ErrLeaseNotFound
	case err != nil:
		return time.Time{}, false, fmt.Errorf("get %s: %w", key, r.explain(err))
	case current.Node == nil || current.Node.Dir:
		return time.Time{}, false, fmt.Errorf("%s is a directory", key)
	}
	opts := &client.SetOptions{PrevExist: client.PrevExist, PrevIndex: current.Node.ModifiedIndex}
	if current.Node.Expiration != nil {
		if opts.TTL, err = ttlSeconds(ttl); err != nil {
			return time.Time{}, false, err
		}
	}
	before := r.now()
	resp, err := r.keys.Set(ctx, key, value, opts)
	switch {
	case hasCode(err, client.ErrorCodeTestFailed):
		r.logger.Debug("lease changed during update; retrying", "key", key)
		return time.Time{}, false, nil
	case hasCode(err, client.ErrorCodeKeyNotFound):
		return time.Time{}, false, subnet.ErrLeaseNotFound
	case err != nil:
		return time.Time{}, false, fmt.Errorf("set %s: %w", key, r.explain(err))
	}
	return expiration(before, resp.Node), true, nil
}

// DeleteLease deletes the lease key; subnet.ErrLeaseNotFound if missing.
func (r *Registry) DeleteLease(ctx context.Context, sn subnet.LeaseID) error {
	key := subnet.LeaseIDKey(r.prefix, sn)
	_, err := r.keys.Delete(ctx, key, nil)
	switch {
	case hasCode(err, client.ErrorCodeKeyNotFound):
		return fmt.Errorf("etcd v2 delete lease %s: %w", sn, subnet.ErrLeaseNotFound)
	case err != nil:
		return fmt.Errorf("etcd v2 delete lease %s: %w", sn, r.explain(err))
	}
	return nil
}

// ipv4Only refuses a lease key with an IPv6 subnet: the v2 store holds
// flannel v0.11's IPv4 leases only (docs/compatibility.md, "IPv6 and
// dual-stack").
func ipv4Only(id subnet.LeaseID) error {
	if id.IPv6Subnet.IsValid() || !id.Subnet.IsValid() {
		return fmt.Errorf("lease %s: IPv6Subnet %s: %w", id, id.IPv6Subnet, ErrIPv6Unsupported)
	}
	return nil
}

// ErrIPv6Unsupported: IPv6 was asked of the etcd v2 store.
var ErrIPv6Unsupported = errors.New("the etcd v2 store is IPv4-only (as flannel v0.11); use etcd v3 (--etcd-api=v3) for IPv6")

// CheckConfig refuses a network config the v2 store cannot serve: one
// with EnableIPv6 true or EnableIPv4 false.
func CheckConfig(cfg *subnet.Config) error {
	switch {
	case cfg.EnableIPv6:
		return fmt.Errorf("config: EnableIPv6 is true: %w", ErrIPv6Unsupported)
	case !cfg.EnableIPv4:
		return fmt.Errorf("config: EnableIPv4 is false: %w", ErrIPv6Unsupported)
	}
	return nil
}
