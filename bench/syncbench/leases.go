package main

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/bench/internal/fakepeers"
	"github.com/overlayd/overlayd/subnet"
)

const (
	// maxTxnOps stays below etcd's default --max-txn-ops (128).
	maxTxnOps = 128
	// leaseTTL is flannel's lease duration (24h): nothing expires during
	// a run.
	leaseTTL = 24 * 60 * 60
)

// grantWorkers is how many grants are in flight while the N leases are
// set up.
const grantWorkers = 16

// leaseWriter puts fake peer leases into etcd, each key attached to an
// etcd lease of its own with a TTL, as flanneld writes them. (Sharing one
// grant among 10,000 keys would be faster to set up but makes every later
// put on that grant cost about a millisecond more in etcd, which would
// show up as event latency.)
type leaseWriter struct {
	cli *clientv3.Client
}

func newLeaseWriter(cli *clientv3.Client) *leaseWriter {
	return &leaseWriter{cli: cli}
}

func (w *leaseWriter) grant(ctx context.Context) (clientv3.LeaseID, error) {
	g, err := w.cli.Grant(ctx, leaseTTL)
	if err != nil {
		return 0, fmt.Errorf("grant an etcd lease of %ds: %w", leaseTTL, err)
	}
	return g.ID, nil
}

// grantMany grants n leases, grantWorkers at a time.
func (w *leaseWriter) grantMany(ctx context.Context, n int) ([]clientv3.LeaseID, error) {
	ids := make([]clientv3.LeaseID, n)
	errs := make(chan error, grantWorkers)
	next := make(chan int)
	for range grantWorkers {
		go func() {
			var err error
			for i := range next {
				if err == nil {
					ids[i], err = w.grant(ctx)
				}
			}
			errs <- err
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	var first error
	for range grantWorkers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return ids, first
}

// putAll writes the peers in transactions of at most maxTxnOps puts.
func (w *leaseWriter) putAll(ctx context.Context, peers []fakepeers.Peer) error {
	ids, err := w.grantMany(ctx, len(peers))
	if err != nil {
		return err
	}
	return w.commitAll(ctx, "lease puts", len(peers), func(i int) (clientv3.Op, error) {
		return putOp(peers[i], ids[i])
	})
}

// commitAll commits op(0) to op(n-1) in transactions of at most maxTxnOps;
// what names the operations in an error.
func (w *leaseWriter) commitAll(ctx context.Context, what string, n int, op func(i int) (clientv3.Op, error)) error {
	ops := make([]clientv3.Op, 0, maxTxnOps)
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		if _, err := w.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("etcd txn of %d %s: %w", len(ops), what, err)
		}
		ops = ops[:0]
		return nil
	}
	for i := range n {
		o, err := op(i)
		if err != nil {
			return err
		}
		ops = append(ops, o)
		if len(ops) == maxTxnOps {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func putOp(p fakepeers.Peer, id clientv3.LeaseID) (clientv3.Op, error) {
	val, err := p.LeaseValue()
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("lease of %s: %w", p.Subnet, err)
	}
	return clientv3.OpPut(p.LeaseKey(subnet.DefaultPrefix), string(val), clientv3.WithLease(id)), nil
}

// prepare grants the peer's etcd lease and returns its put, so that the
// grant stays out of a timed put.
func (w *leaseWriter) prepare(ctx context.Context, p fakepeers.Peer) (clientv3.Op, error) {
	id, err := w.grant(ctx)
	if err != nil {
		return clientv3.Op{}, err
	}
	return putOp(p, id)
}

// do runs one prepared operation.
func (w *leaseWriter) do(ctx context.Context, op clientv3.Op) error {
	if _, err := w.cli.Do(ctx, op); err != nil {
		return fmt.Errorf("etcd %s: %w", op.KeyBytes(), err)
	}
	return nil
}

// remove deletes one lease's key (its etcd lease dies with the etcd).
func (w *leaseWriter) remove(ctx context.Context, p fakepeers.Peer) error {
	key := p.LeaseKey(subnet.DefaultPrefix)
	if _, err := w.cli.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete lease %s: %w", key, err)
	}
	return nil
}
