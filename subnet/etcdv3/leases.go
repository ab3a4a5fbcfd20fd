package etcdv3

import (
	"context"
	"fmt"
	"math"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/subnet"
)

// GetNetworkConfig returns the raw JSON at <prefix>/config.
func (r *Registry) GetNetworkConfig(ctx context.Context) ([]byte, error) {
	key := subnet.ConfigKey(r.prefix)
	resp, err := r.client.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("etcd v3 get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("etcd v3 get %s: %w", key, subnet.ErrConfigNotFound)
	}
	return resp.Kvs[0].Value, nil
}

// ListLeases reads every key under <prefix>/subnets/ in one request.
// Malformed keys and values are returned in Skipped, never as an error.
func (r *Registry) ListLeases(ctx context.Context) (subnet.LeaseList, error) {
	dir := subnet.SubnetsDir(r.prefix)
	resp, err := r.client.Get(ctx, dir, clientv3.WithPrefix())
	if err != nil {
		return subnet.LeaseList{}, fmt.Errorf("etcd v3 list %s: %w", dir, err)
	}
	list := subnet.LeaseList{Revision: resp.Header.Revision}
	for _, kv := range resp.Kvs {
		lease, err := r.decodeLease(kv)
		if err != nil {
			list.Skipped = append(list.Skipped, subnet.SkippedKey{Key: string(kv.Key), Reason: err})
			continue
		}
		list.Leases = append(list.Leases, lease)
	}
	return list, nil
}

// CreateLease grants an etcd lease of ttl and puts the key with it, only if
// the key does not exist; otherwise it revokes the grant and returns
// subnet.ErrLeaseExists.
func (r *Registry) CreateLease(ctx context.Context, sn subnet.LeaseID, attrs subnet.LeaseAttrs, ttl time.Duration) (time.Time, error) {
	expires, err := r.createLease(ctx, sn, attrs, ttl)
	if err != nil {
		return time.Time{}, fmt.Errorf("etcd v3 create lease %s: %w", sn, err)
	}
	return expires, nil
}

func (r *Registry) createLease(ctx context.Context, sn subnet.LeaseID, attrs subnet.LeaseAttrs, ttl time.Duration) (time.Time, error) {
	value, err := subnet.MarshalLeaseAttrs(attrs, subnet.FormV028)
	if err != nil {
		return time.Time{}, err
	}
	key, err := r.leaseKey(sn)
	if err != nil {
		return time.Time{}, err
	}
	id, expires, err := r.grant(ctx, ttl)
	if err != nil {
		return time.Time{}, err
	}
	resp, err := r.client.Txn(ctx).
		If(clientv3.Compare(clientv3.Version(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value), clientv3.WithLease(id))).
		Commit()
	if err != nil {
		// The put may have happened; revoking removes it again.
		r.revoke(ctx, id)
		return time.Time{}, fmt.Errorf("transaction on %s: %w", key, err)
	}
	if !resp.Succeeded {
		r.revoke(ctx, id)
		return time.Time{}, subnet.ErrLeaseExists
	}
	return expires, nil
}

// UpdateLease rewrites lease's value. A reservation (a key without etcd
// lease) is put without lease and stays one; the returned time is zero.
// Otherwise the key moves to a fresh etcd lease of ttl (see the package
// comment for why not KeepAliveOnce).
func (r *Registry) UpdateLease(ctx context.Context, lease subnet.Lease, ttl time.Duration) (time.Time, error) {
	expires, err := r.updateLease(ctx, lease, ttl)
	if err != nil {
		return time.Time{}, fmt.Errorf("etcd v3 update lease %s: %w", lease.ID(), err)
	}
	return expires, nil
}

// updateAttempts bounds the retries when the key's etcd lease changes
// between reading it and the transaction.
const updateAttempts = 3

// keyState is what an update needs to know about the key as it is now.
type keyState struct {
	exists      bool
	leaseID     clientv3.LeaseID
	modRevision int64
}

func (r *Registry) updateLease(ctx context.Context, lease subnet.Lease, ttl time.Duration) (time.Time, error) {
	value, err := subnet.MarshalLeaseAttrs(lease.Attrs, subnet.FormV028)
	if err != nil {
		return time.Time{}, err
	}
	key, err := r.leaseKey(lease.ID())
	if err != nil {
		return time.Time{}, err
	}
	resp, err := r.client.Get(ctx, key)
	if err != nil {
		return time.Time{}, fmt.Errorf("get %s: %w", key, err)
	}
	state := stateOf(resp)
	for range updateAttempts {
		if !state.exists {
			return time.Time{}, subnet.ErrLeaseNotFound
		}
		var done bool
		var expires time.Time
		if state.leaseID == clientv3.NoLease {
			done, state, err = r.putReservation(ctx, key, string(value), state.modRevision)
		} else {
			expires, done, state, err = r.moveToNewLease(ctx, key, string(value), state.leaseID, ttl)
		}
		if err != nil || done {
			return expires, err
		}
	}
	return time.Time{}, fmt.Errorf("%s kept changing during %d attempts", key, updateAttempts)
}

func stateOf(resp *clientv3.GetResponse) keyState {
	if resp == nil || len(resp.Kvs) == 0 {
		return keyState{}
	}
	kv := resp.Kvs[0]
	return keyState{exists: true, leaseID: clientv3.LeaseID(kv.Lease), modRevision: kv.ModRevision}
}

// stateAfterFailedTxn reads the key from the Else branch of a transaction.
func stateAfterFailedTxn(resp *clientv3.TxnResponse) keyState {
	if len(resp.Responses) == 0 {
		return keyState{}
	}
	return stateOf((*clientv3.GetResponse)(resp.Responses[0].GetResponseRange()))
}

// putReservation rewrites a TTL-less key, without lease, if it is
// unchanged since modRev.
func (r *Registry) putReservation(ctx context.Context, key, value string, modRev int64) (bool, keyState, error) {
	resp, err := r.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", modRev)).
		Then(clientv3.OpPut(key, value)).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return false, keyState{}, fmt.Errorf("transaction on %s: %w", key, err)
	}
	if resp.Succeeded {
		return true, keyState{}, nil
	}
	return false, stateAfterFailedTxn(resp), nil
}

// moveToNewLease puts key on a fresh etcd lease if it still carries oldID,
// then revokes oldID when this Registry granted it.
func (r *Registry) moveToNewLease(ctx context.Context, key, value string, oldID clientv3.LeaseID, ttl time.Duration) (time.Time, bool, keyState, error) {
	newID, expires, err := r.grant(ctx, ttl)
	if err != nil {
		return time.Time{}, false, keyState{}, err
	}
	resp, err := r.client.Txn(ctx).
		If(clientv3.Compare(clientv3.Version(key), ">", 0),
			clientv3.Compare(clientv3.LeaseValue(key), "=", oldID)).
		Then(clientv3.OpPut(key, value, clientv3.WithLease(newID))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		// The put may have happened: keep the new grant (the key may be on
		// it now); unused, it expires after ttl.
		return time.Time{}, false, keyState{}, fmt.Errorf("transaction on %s: %w", key, err)
	}
	if !resp.Succeeded {
		r.revoke(ctx, newID)
		return time.Time{}, false, stateAfterFailedTxn(resp), nil
	}
	if _, ours := r.granted.lookup(oldID); ours {
		r.revoke(ctx, oldID)
	}
	return expires, true, keyState{}, nil
}

// DeleteLease deletes the lease key, and revokes its etcd lease when this
// Registry granted it. A missing key is subnet.ErrLeaseNotFound.
func (r *Registry) DeleteLease(ctx context.Context, sn subnet.LeaseID) error {
	key, err := r.leaseKey(sn)
	if err != nil {
		return fmt.Errorf("etcd v3 delete lease %s: %w", sn, err)
	}
	resp, err := r.client.Delete(ctx, key, clientv3.WithPrevKV())
	if err != nil {
		return fmt.Errorf("etcd v3 delete lease %s: %w", sn, err)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("etcd v3 delete lease %s: %w", sn, subnet.ErrLeaseNotFound)
	}
	for _, prev := range resp.PrevKvs {
		if id := clientv3.LeaseID(prev.Lease); id != clientv3.NoLease {
			if _, ours := r.granted.lookup(id); ours {
				r.revoke(ctx, id)
			}
		}
	}
	return nil
}

// leaseKey is the full key of a lease; it refuses an ID that would not
// read back as itself (never write a key flanneld cannot parse).
func (r *Registry) leaseKey(id subnet.LeaseID) (string, error) {
	got, err := subnet.ParseLeaseIDName(id.KeyName())
	if err != nil || got != id {
		return "", fmt.Errorf("lease subnets %s / %s do not make a valid key", id.Subnet, id.IPv6Subnet)
	}
	return subnet.LeaseIDKey(r.prefix, id), nil
}

// grant creates an etcd lease of ttl (rounded up to whole seconds) and
// remembers its expiration: the time before the request plus the TTL etcd
// granted, which may be raised to etcd's minimum.
func (r *Registry) grant(ctx context.Context, ttl time.Duration) (clientv3.LeaseID, time.Time, error) {
	if ttl <= 0 {
		return 0, time.Time{}, fmt.Errorf("TTL %s: must be positive", ttl)
	}
	seconds := int64(math.Ceil(ttl.Seconds()))
	before := r.now()
	resp, err := r.client.Grant(ctx, seconds)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("grant etcd lease of %ds: %w", seconds, err)
	}
	expires := before.Add(time.Duration(resp.TTL) * time.Second)
	r.granted.remember(resp.ID, expires, before)
	return resp.ID, expires, nil
}

// revoke drops an etcd lease this Registry granted, best effort: a lease
// left behind expires on its own.
func (r *Registry) revoke(ctx context.Context, id clientv3.LeaseID) {
	r.granted.forget(id)
	cleanupCtx, cancel := r.cleanupContext(ctx)
	defer cancel()
	if _, err := r.client.Revoke(cleanupCtx, id); err != nil {
		r.logger.Warn("revoke etcd lease failed; it will expire on its own",
			"lease_id", fmt.Sprintf("%x", int64(id)), "error", err)
	}
}
