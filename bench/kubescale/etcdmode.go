package main

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/bench/internal/fakepeers"
	"github.com/overlayd/overlayd/subnet"
)

// leaseBatch is how many leases go in one etcd transaction.
const leaseBatch = 128

// writeLeases puts the same peers as etcd leases (without TTL) and the
// network config, so that overlayd in etcd mode can be measured over the
// same peer set in the same run.
func (c *cluster) writeLeases(ctx context.Context, peers []fakepeers.Peer) error {
	if err := c.lab.WriteConfig(ctx, c.lab.ConfigJSON()); err != nil {
		return err
	}
	cli, err := c.lab.EtcdClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	ops := make([]clientv3.Op, 0, leaseBatch)
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("put %d leases: %w", len(ops), err)
		}
		ops = ops[:0]
		return nil
	}
	for _, p := range peers {
		v, err := p.LeaseValue()
		if err != nil {
			return err
		}
		ops = append(ops, clientv3.OpPut(p.LeaseKey(subnet.DefaultPrefix), string(v)))
		if len(ops) == leaseBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
