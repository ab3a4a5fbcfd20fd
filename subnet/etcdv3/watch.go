package etcdv3

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/subnet"
)

// errWatchClosed is returned when etcd or the client ends the watch
// stream while ctx is still live; the caller re-lists and watches again.
var errWatchClosed = errors.New("watch stream closed")

// WatchLeases sends the changes under <prefix>/subnets/ after fromRevision
// to out, one WatchBatch per etcd response, until ctx ends (nil) or the
// stream breaks (an error; subnet.ErrHistoryLost after compaction). It
// requires a leader, so a partitioned member ends the watch instead of
// going silent.
func (r *Registry) WatchLeases(ctx context.Context, fromRevision int64, out chan<- subnet.WatchBatch) error {
	dir := subnet.SubnetsDir(r.prefix)
	watchCtx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	responses := r.client.Watch(watchCtx, dir,
		clientv3.WithPrefix(), clientv3.WithRev(fromRevision+1), clientv3.WithPrevKV())
	for {
		var resp clientv3.WatchResponse
		var open bool
		select {
		case <-ctx.Done():
			return nil
		case resp, open = <-responses:
		}
		if err := r.checkWatchResponse(ctx, resp, open, fromRevision); err != nil {
			return fmt.Errorf("etcd v3 watch %s from revision %d: %w", dir, fromRevision+1, err)
		}
		if ctx.Err() != nil {
			return nil
		}
		batch := r.decodeWatchResponse(resp)
		if len(batch.Events) == 0 && len(batch.Skipped) == 0 {
			continue
		}
		select {
		case out <- batch:
		case <-ctx.Done():
			return nil
		}
	}
}

// checkWatchResponse turns the ways a watch ends into errors: nil means
// the response carries events (or ctx ended).
func (r *Registry) checkWatchResponse(ctx context.Context, resp clientv3.WatchResponse, open bool, fromRevision int64) error {
	if resp.CompactRevision != 0 {
		return fmt.Errorf("revision %d compacted (oldest kept %d): %w",
			fromRevision+1, resp.CompactRevision, subnet.ErrHistoryLost)
	}
	if ctx.Err() != nil {
		return nil
	}
	if !open {
		return errWatchClosed
	}
	if err := resp.Err(); err != nil {
		return err
	}
	if resp.Canceled {
		return fmt.Errorf("%w: canceled by etcd (%s)", errWatchClosed, resp.CancelReason)
	}
	return nil
}

func (r *Registry) decodeWatchResponse(resp clientv3.WatchResponse) subnet.WatchBatch {
	batch := subnet.WatchBatch{Revision: resp.Header.Revision}
	for _, ev := range resp.Events {
		event, err := r.decodeEvent(ev)
		if err != nil {
			batch.Skipped = append(batch.Skipped, subnet.SkippedKey{Key: string(ev.Kv.Key), Reason: err})
			continue
		}
		batch.Events = append(batch.Events, event)
	}
	return batch
}

// decodeEvent maps a put to EventAdded and a delete (or expiry) to
// EventRemoved carrying the previous value's attributes when etcd still
// had them; a removal whose previous value is gone or unreadable still
// names the subnet, and the caller supplies the last attributes it saw.
func (r *Registry) decodeEvent(ev *clientv3.Event) (subnet.Event, error) {
	if ev.Type == clientv3.EventTypePut {
		lease, err := r.decodeLease(ev.Kv)
		return subnet.Event{Type: subnet.EventAdded, Lease: lease}, err
	}
	id, err := subnet.ParseLeaseIDKey(r.prefix, string(ev.Kv.Key))
	if err != nil {
		return subnet.Event{}, err
	}
	removed := subnet.Event{Type: subnet.EventRemoved, Lease: subnet.Lease{Subnet: id.Subnet, IPv6Subnet: id.IPv6Subnet}}
	if ev.PrevKv != nil {
		if prev, err := r.decodeLease(ev.PrevKv); err == nil {
			removed.Lease = prev
		}
	}
	return removed, nil
}
