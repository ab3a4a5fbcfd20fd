package kube

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/overlayd/overlayd/subnet"
)

// RunWatch delivers the peer lease set to sink until ctx ends (then it
// returns nil). A client-go reflector lists and watches every Node, and
// feeds peerSet directly (it is the reflector's store): the first list
// goes to ReplacePeers as the peers (nodes annotated
// kube-subnet-manager=true with a usable lease, our own node excluded),
// every later change to UpdatePeers: an added, changed or re-annotated
// node as added, a deleted or no longer managed node as removed with its
// last lease, and a re-list as the difference. A node whose annotations
// became unusable keeps its last good lease (a bad value never removes a
// peer) and is logged once per reason. The reflector re-lists and
// re-watches after failures; each failure is logged. A change to our own
// node wakes RunRenewal.
//
// No informer cache sits in between: what the daemon keeps of a Node is
// its lease, a few hundred bytes. The list comes in pages (listEntries),
// and each Node is reduced to its lease (nodeEntry) before the next page
// is read, so 10,000 Nodes never sit in memory whole.
func (m *Manager) RunWatch(ctx context.Context, sink subnet.PeerSink) error {
	peers := newPeerSet(m, sink)
	r := cache.NewReflectorWithOptions(m.nodeListWatch(peers), &corev1.Node{}, peers,
		cache.ReflectorOptions{Name: "overlayd-nodes", TypeDescription: "nodes"})
	r.RunWithContext(ctx)
	return nil
}

// nodeListWatch lists and watches every Node through Options.Client;
// failures are logged (peerSet.watchFailed) and the reflector retries.
func (m *Manager) nodeListWatch(peers *peerSet) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			l, err := listEntries(ctx, m.o.Client, opts, m.o.Annotations, peers.earlyPage())
			if err != nil {
				peers.watchFailed(err)
				return nil, err
			}
			return l, nil
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			w, err := m.o.Client.WatchNodes(ctx, opts)
			if err != nil {
				peers.watchFailed(err)
			}
			return w, err
		},
	}
}

// peerSet is RunWatch's state, and the reflector's store: the peer
// leases the sink knows, by node. Its methods run on the reflector's
// goroutine; the sink must not block (it only queues).
type peerSet struct {
	m    *Manager
	sink subnet.PeerSink

	mu      sync.Mutex
	synced  bool                    // ReplacePeers sent; events go to UpdatePeers
	known   map[string]subnet.Lease // node name → lease delivered
	bad     map[string]string       // node name → unusable-lease reason logged
	lastErr string                  // last watch failure logged
}

var _ cache.TransformingStore = (*peerSet)(nil)

func newPeerSet(m *Manager, sink subnet.PeerSink) *peerSet {
	return &peerSet{m: m, sink: sink, known: map[string]subnet.Lease{}, bad: map[string]string{}}
}

// Transformer reduces the Nodes the reflector holds during a streamed
// list to their leases (nodeEntry).
func (p *peerSet) Transformer() cache.TransformFunc {
	ann := p.m.o.Annotations
	return func(obj any) (any, error) {
		if n, ok := obj.(*corev1.Node); ok {
			return ann.entryOf(n), nil
		}
		return obj, nil
	}
}

// Add, Update and Delete are one watched change each.
func (p *peerSet) Add(obj any) error    { p.nodeChanged(obj); return nil }
func (p *peerSet) Update(obj any) error { p.nodeChanged(obj); return nil }
func (p *peerSet) Delete(obj any) error { p.nodeDeleted(obj); return nil }

// Resync is not used (no resync period).
func (p *peerSet) Resync() error { return nil }

// Replace is a complete list: the first peer set, or, after the reflector
// re-listed (a watch that expired, a reconnect), the difference to what
// the sink knows.
func (p *peerSet) Replace(objs []any, _ string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = ""
	present := make(map[string]bool, len(objs))
	var events []subnet.Event
	for _, obj := range objs {
		name, l, err, ok := p.m.o.Annotations.readNode(obj)
		if !ok {
			continue
		}
		if name == p.m.o.NodeName {
			p.m.pokeRenewal()
			continue
		}
		present[name] = true
		if ev := p.apply(name, &read{l, err}); p.synced {
			events = append(events, ev...)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.known)) {
		if !present[name] {
			events = append(events, p.apply(name, nil)...)
		}
	}
	if !p.synced {
		p.firstSnapshot()
		return nil
	}
	p.m.log.Info("node list again", "peers", len(p.known), "changes", len(events), "unusable", len(p.bad))
	p.deliver(events)
	return nil
}

// earlyPage returns what the first list does with each page as it is
// read: the page's peers go to a sink that takes them early
// (subnet.EarlyPeerSink), so that programming them overlaps the rest of
// the list. The complete list then goes through Replace as always. Nil
// once the first snapshot is out, or when the sink does not take early
// peers.
func (p *peerSet) earlyPage() func([]*nodeEntry) {
	es, ok := p.sink.(subnet.EarlyPeerSink)
	p.mu.Lock()
	synced := p.synced
	p.mu.Unlock()
	if !ok || synced {
		return nil
	}
	return func(page []*nodeEntry) {
		leases := make([]subnet.Lease, 0, len(page))
		for _, e := range page {
			if e.err == nil && e.name != p.m.o.NodeName {
				leases = append(leases, e.lease)
			}
		}
		es.AddEarlyPeers(leases)
	}
}

// firstSnapshot sends the known peers as the first peer set.
func (p *peerSet) firstSnapshot() {
	p.synced = true
	all := make([]subnet.Lease, 0, len(p.known))
	for _, name := range slices.Sorted(maps.Keys(p.known)) {
		all = append(all, p.known[name])
		p.logPeer("peer added", name, p.known[name])
	}
	p.m.log.Info("node watch synced", "peers", len(all), "unusable", len(p.bad))
	p.sink.ReplacePeers(all)
	p.updateMetrics()
}

// deliver logs and sends events.
func (p *peerSet) deliver(events []subnet.Event) {
	if len(events) == 0 {
		return
	}
	for _, e := range events {
		p.logPeer("peer "+e.Type.String(), "", e.Lease)
	}
	p.sink.UpdatePeers(events)
	p.updateMetrics()
}

func (p *peerSet) nodeChanged(obj any) {
	name, l, err, ok := p.m.o.Annotations.readNode(obj)
	if !ok {
		return
	}
	p.update(name, &read{l, err})
}

func (p *peerSet) nodeDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	name, _, _, ok := p.m.o.Annotations.readNode(obj)
	if !ok {
		return
	}
	p.update(name, nil)
}

// update handles one node (nil: deleted) once the first list is out.
func (p *peerSet) update(name string, n *read) {
	if name == p.m.o.NodeName {
		p.m.pokeRenewal()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = "" // the watch delivers again
	if !p.synced {
		return // the reflector lists first
	}
	p.deliver(p.apply(name, n))
}

// apply updates the known lease of node name (n nil: deleted) and returns
// the events that tell the sink.
func (p *peerSet) apply(name string, n *read) []subnet.Event {
	old, had := p.known[name]
	cur, has := p.leaseOf(name, n)
	if !has && had && n != nil && p.bad[name] != "" {
		return nil // unusable now: keep the last good lease
	}
	switch {
	case !had && !has:
		return nil
	case had && !has:
		delete(p.known, name)
		return []subnet.Event{{Type: subnet.EventRemoved, Lease: old}}
	case !had:
		p.known[name] = cur
		return []subnet.Event{{Type: subnet.EventAdded, Lease: cur}}
	case old.ID() != cur.ID():
		p.known[name] = cur
		return []subnet.Event{{Type: subnet.EventRemoved, Lease: old}, {Type: subnet.EventAdded, Lease: cur}}
	case subnet.AttrsEqual(old.Attrs, cur.Attrs):
		return nil
	default:
		p.known[name] = cur
		return []subnet.Event{{Type: subnet.EventAdded, Lease: cur}}
	}
}

// read is a Node's lease as read from its annotations, or why it could
// not be.
type read struct {
	lease subnet.Lease
	err   error
}

// leaseOf is node n's peer lease; has is false for a deleted node, a node
// that is not managed, and an unusable lease (logged once per reason).
func (p *peerSet) leaseOf(name string, n *read) (subnet.Lease, bool) {
	if n == nil {
		delete(p.bad, name)
		return subnet.Lease{}, false
	}
	l, err := n.lease, n.err
	if err == nil {
		err = overlapsOwn(p.m.Lease(), l)
	}
	switch {
	case err == nil:
		delete(p.bad, name)
		return l, true
	case errors.Is(err, errNotManaged):
		delete(p.bad, name)
		return subnet.Lease{}, false
	}
	if p.bad[name] != err.Error() {
		p.bad[name] = err.Error()
		p.m.log.Warn("ignoring a node's unusable lease", "node", name, "reason", err)
	}
	return subnet.Lease{}, false
}

// logPeer logs one peer change at debug level: the peer set's owner logs
// the one line a change gets.
func (p *peerSet) logPeer(msg, node string, l subnet.Lease) {
	p.m.log.Debug(msg, "node", node, "subnet", l.Subnet, "public_ip", l.Attrs.PublicIP, "backend", l.Attrs.BackendType)
}

func (p *peerSet) updateMetrics() {
	p.m.metrics.peers.Set(float64(len(p.known)))
	p.m.metrics.skipped.Set(float64(len(p.bad)))
}

// watchFailed logs a list or watch failure once per message; client-go
// retries with backoff.
func (p *peerSet) watchFailed(err error) {
	err = explainAPIError(err, "list/watch nodes")
	p.m.metrics.apiErrors.WithLabelValues("watch_nodes").Inc()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err.Error() == p.lastErr {
		return
	}
	p.lastErr = err.Error()
	p.m.log.Warn("node watch failed; client-go re-lists and re-watches", "err", err)
}

// overlapsOwn refuses a peer lease whose podCIDR of either family
// overlaps ours.
func overlapsOwn(own, l subnet.Lease) error {
	for _, pair := range [][2]netip.Prefix{{own.Subnet, l.Subnet}, {own.IPv6Subnet, l.IPv6Subnet}} {
		if pair[0].IsValid() && pair[1].IsValid() && pair[0].Overlaps(pair[1]) {
			return errors.New("its podCIDR " + pair[1].String() + " overlaps ours " + pair[0].String())
		}
	}
	return nil
}
