package main

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/bench/internal/fakepeers"
	"github.com/overlayd/overlayd/subnet"
)

// removeResult: every peer's lease deleted at once (in transactions of
// maxTxnOps deletes), timed from the first delete until overlayd is in
// sync with no peer and no entry of theirs left (neighbours, FDB entries,
// routes, nexthops).
type removeResult struct {
	Seconds float64 `json:"seconds"`
	Writes  float64 `json:"writes"`
	Passes  float64 `json:"passes"`
	// LongestPassSeconds bounds the longest pass during the removal from
	// above: the pass-duration histogram's sum over its count, taken over
	// the scrapes that saw exactly one new pass, and the largest such.
	LongestPassSeconds float64 `json:"longest_pass_seconds"`
}

// removeTimeout bounds the removal.
const removeTimeout = 5 * time.Minute

func (b *bench) measureRemoveAll(ctx context.Context) (removeResult, error) {
	var res removeResult
	pctx, cancel := b.d.phase(ctx, removeTimeout)
	defer cancel()
	first, err := scrapeMetrics(pctx, b.node.NS)
	if err != nil {
		return res, b.d.explain(err)
	}
	start := time.Now()
	if err := b.leases.deleteAll(pctx, b.peers); err != nil {
		return res, err
	}
	inSyncEmpty := false
	err = b.watchSync(pctx, syncPoll, first.sync(), func() bool { return inSyncEmpty }, func(first, prev, cur syncView) {
		if n := cur.passesTimed - prev.passesTimed; n == 1 {
			res.LongestPassSeconds = max(res.LongestPassSeconds, cur.passSeconds-prev.passSeconds)
		}
		if cur.inSync && cur.peers == 0 && cur.neighbours == 0 && cur.fdb == 0 && cur.routes == 0 && cur.nexthops == 0 {
			res.Seconds = time.Since(start).Seconds()
			res.Writes = cur.writes - first.writes
			res.Passes = cur.passesTimed - first.passesTimed
			inSyncEmpty = true
		}
	}, func(last syncView) string { return fmt.Sprintf("remove all: last seen %+v", last) })
	if err != nil {
		return res, err
	}
	k, err := b.finalDump()
	if err != nil {
		return res, err
	}
	if k.Neighbours != 0 || k.FDB != 0 || k.Routes != 0 {
		return res, fmt.Errorf("remove all: the kernel still holds %+v", k)
	}
	return res, nil
}

// deleteAll deletes the peers' keys in transactions of maxTxnOps.
func (w *leaseWriter) deleteAll(ctx context.Context, peers []fakepeers.Peer) error {
	return w.commitAll(ctx, "lease deletes", len(peers), func(i int) (clientv3.Op, error) {
		return clientv3.OpDelete(peers[i].LeaseKey(subnet.DefaultPrefix)), nil
	})
}
