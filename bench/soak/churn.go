package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/bench/internal/fakepeers"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/vxlandata"
)

// churnCounts are the operations done (and failed) during the run.
type churnCounts struct {
	Adds, Deletes, MACChanges, Errors int
}

// churn keeps about target peers in etcd and changes them one operation
// at a time: an add (a spare from the pool), a delete, a MAC change.
type churn struct {
	cli     *clientv3.Client
	pool    []fakepeers.Peer
	present []int // indexes into pool, in etcd
	spare   []int // indexes into pool, not in etcd
	macs    uint32
	rnd     *rand.Rand
}

func newChurn(cli *clientv3.Client, pool []fakepeers.Peer, target int) *churn {
	c := &churn{cli: cli, pool: pool, rnd: rand.New(rand.NewPCG(1, 2))}
	for i := range pool {
		if i < target {
			c.present = append(c.present, i)
		} else {
			c.spare = append(c.spare, i)
		}
	}
	return c
}

// load writes the present peers, 100 per transaction.
func (c *churn) load(ctx context.Context) error {
	for start := 0; start < len(c.present); start += 100 {
		var ops []clientv3.Op
		for _, i := range c.present[start:min(start+100, len(c.present))] {
			v, err := c.pool[i].LeaseValue()
			if err != nil {
				return err
			}
			ops = append(ops, clientv3.OpPut(c.pool[i].LeaseKey(subnet.DefaultPrefix), string(v)))
		}
		if _, err := c.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return err
		}
	}
	return nil
}

// run does rate operations a second until ctx ends.
func (c *churn) run(ctx context.Context, rate float64) churnCounts {
	var n churnCounts
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for step := 0; ; step++ {
		select {
		case <-ctx.Done():
			return n
		case <-tick.C:
		}
		if err := c.step(ctx, step%3, &n); err != nil && ctx.Err() == nil {
			n.Errors++
		}
	}
}

func (c *churn) step(ctx context.Context, kind int, n *churnCounts) error {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	switch {
	case kind == 0 && len(c.spare) > 0:
		k := c.rnd.IntN(len(c.spare))
		i := c.spare[k]
		if err := c.put(wctx, i); err != nil {
			return err
		}
		c.spare = append(c.spare[:k], c.spare[k+1:]...)
		c.present = append(c.present, i)
		n.Adds++
	case kind == 1 && len(c.present) > 0:
		k := c.rnd.IntN(len(c.present))
		i := c.present[k]
		if _, err := c.cli.Delete(wctx, c.pool[i].LeaseKey(subnet.DefaultPrefix)); err != nil {
			return err
		}
		c.present = append(c.present[:k], c.present[k+1:]...)
		c.spare = append(c.spare, i)
		n.Deletes++
	case len(c.present) > 0:
		i := c.present[c.rnd.IntN(len(c.present))]
		c.macs++
		old := c.pool[i].MAC
		c.pool[i].MAC = [6]byte{0x0e, 0x50, byte(c.macs >> 24), byte(c.macs >> 16), byte(c.macs >> 8), byte(c.macs)}
		if err := c.put(wctx, i); err != nil {
			c.pool[i].MAC = old // perhaps written: the end compares with etcd itself
			return err
		}
		n.MACChanges++
	}
	return nil
}

func (c *churn) put(ctx context.Context, i int) error {
	v, err := c.pool[i].LeaseValue()
	if err != nil {
		return err
	}
	_, err = c.cli.Put(ctx, c.pool[i].LeaseKey(subnet.DefaultPrefix), string(v))
	return err
}

// desired is every well-formed vxlan lease in etcd: what the kernel
// must hold (the churn's own book-keeping cannot know whether a write
// canceled at the very end was applied).
func (c *churn) desired(ctx context.Context) ([]fakepeers.Peer, error) {
	dir := subnet.SubnetsDir(subnet.DefaultPrefix)
	resp, err := c.cli.Get(ctx, dir, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []fakepeers.Peer
	for _, kv := range resp.Kvs {
		sn, err := subnet.ParseLeaseKey(subnet.DefaultPrefix, string(kv.Key))
		if err != nil {
			continue
		}
		attrs, err := subnet.UnmarshalLeaseAttrs(kv.Value)
		if err != nil {
			continue
		}
		data, err := vxlandata.Unmarshal(attrs.BackendData)
		if err != nil {
			continue
		}
		p := fakepeers.Peer{Subnet: sn, PublicIP: attrs.PublicIP}
		copy(p.MAC[:], data.VtepMAC)
		out = append(out, p)
	}
	return out, nil
}
