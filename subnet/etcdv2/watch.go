package etcdv2

import (
	"context"
	"fmt"
	"strings"

	client "go.etcd.io/etcd/client/v2"

	"github.com/overlayd/overlayd/subnet"
)

// WatchLeases sends the changes in <prefix>/subnets/ after index
// fromRevision to out, one WatchBatch per v2 event, until ctx ends (nil)
// or the watch fails: subnet.ErrHistoryLost (wrapped) when etcd no longer
// has the index (error 401 "index cleared", 400 "watcher cleared") or the
// directory itself was removed; the caller re-lists.
func (r *Registry) WatchLeases(ctx context.Context, fromRevision int64, out chan<- subnet.WatchBatch) error {
	dir := subnetsDir(r.prefix)
	watcher := r.keys.Watcher(dir, &client.WatcherOptions{AfterIndex: uint64(max(fromRevision, 0)), Recursive: true})
	for {
		resp, err := watcher.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("etcd v2 watch %s after index %d: %w", dir, fromRevision, r.watchError(err))
		}
		batch, err := r.decodeWatchResponse(resp)
		if err != nil {
			return fmt.Errorf("etcd v2 watch %s: %w", dir, err)
		}
		select {
		case out <- batch:
		case <-ctx.Done():
			return nil
		}
	}
}

func (r *Registry) watchError(err error) error {
	if hasCode(err, client.ErrorCodeEventIndexCleared) || hasCode(err, client.ErrorCodeWatcherCleared) {
		return fmt.Errorf("%w: %w", subnet.ErrHistoryLost, err)
	}
	return r.explain(err)
}

// isPutAction reports whether a v2 action leaves the key in place.
func isPutAction(action string) bool {
	switch action {
	case "set", "create", "update", "compareAndSwap":
		return true
	}
	return false
}

// isRemoveAction reports whether a v2 action removes the key.
func isRemoveAction(action string) bool {
	switch action {
	case "delete", "expire", "compareAndDelete":
		return true
	}
	return false
}

// decodeWatchResponse turns one event into a batch. A malformed key or
// value is a Skipped entry; the removal of the subnets directory or of a
// parent is subnet.ErrHistoryLost (every lease went at once).
func (r *Registry) decodeWatchResponse(resp *client.Response) (subnet.WatchBatch, error) {
	if resp == nil || resp.Node == nil {
		return subnet.WatchBatch{}, fmt.Errorf("watch response without node")
	}
	node := resp.Node
	batch := subnet.WatchBatch{Revision: int64(node.ModifiedIndex)}
	if isRemoveAction(resp.Action) && node.Dir && r.coversSubnetsDir(node.Key) {
		return batch, fmt.Errorf("%s %s at index %d removed every lease: %w",
			resp.Action, node.Key, node.ModifiedIndex, subnet.ErrHistoryLost)
	}
	event, err := r.decodeEvent(resp)
	if err != nil {
		batch.Skipped = []subnet.SkippedKey{{Key: node.Key, Reason: err}}
		return batch, nil
	}
	batch.Events = []subnet.Event{event}
	return batch, nil
}

// coversSubnetsDir reports whether key is the subnets directory or one of
// its parents.
func (r *Registry) coversSubnetsDir(key string) bool {
	dir := subnetsDir(r.prefix)
	key = strings.TrimSuffix(key, "/")
	return key == dir || key == "" || strings.HasPrefix(dir, key+"/")
}

// decodeEvent maps a write to EventAdded and a delete or expiry to
// EventRemoved carrying the previous value's attributes when readable; a
// removal whose previous value is unreadable still names the subnet.
func (r *Registry) decodeEvent(resp *client.Response) (subnet.Event, error) {
	switch {
	case isPutAction(resp.Action):
		lease, err := r.decodeNode(r.now(), resp.Node)
		return subnet.Event{Type: subnet.EventAdded, Lease: lease}, err
	case isRemoveAction(resp.Action):
		return r.decodeRemoval(resp)
	}
	return subnet.Event{}, fmt.Errorf("key %s: unknown etcd v2 action %q", resp.Node.Key, resp.Action)
}

func (r *Registry) decodeRemoval(resp *client.Response) (subnet.Event, error) {
	if resp.Node.Dir {
		return subnet.Event{}, fmt.Errorf("lease key %s is a directory", resp.Node.Key)
	}
	id, err := subnet.ParseLeaseIDKey(r.prefix, resp.Node.Key)
	if err != nil {
		return subnet.Event{}, err
	}
	removed := subnet.Event{Type: subnet.EventRemoved, Lease: subnet.Lease{Subnet: id.Subnet, IPv6Subnet: id.IPv6Subnet}}
	if resp.PrevNode != nil {
		if prev, err := r.decodeNode(r.now(), resp.PrevNode); err == nil {
			removed.Lease = prev
		}
	}
	return removed, nil
}
