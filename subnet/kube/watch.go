package kube

import (
	"context"
	"errors"
	"maps"
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
// returns nil). A node informer lists and watches every Node; once it has
// synced, the peers (nodes annotated kube-subnet-manager=true with a
// usable lease, our own node excluded) go to ReplacePeers, and every later
// change to UpdatePeers: an added, changed or re-annotated node as added,
// a deleted or no longer managed node as removed with its last lease. A
// node whose annotations became unusable keeps its last good lease (a bad
// value never removes a peer) and is logged once per reason. client-go
// re-lists and re-watches after failures; each failure is logged. A change
// to our own node wakes RunRenewal.
func (m *Manager) RunWatch(ctx context.Context, sink subnet.PeerSink) error {
	inf := m.nodeInformer()
	peers := &peerSet{m: m, sink: sink, known: map[string]subnet.Lease{}, bad: map[string]string{}}
	if err := inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) { peers.watchFailed(err) }); err != nil {
		return err
	}
	if err := inf.SetTransform(slimNode); err != nil {
		return err
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    peers.nodeChanged,
		UpdateFunc: func(_, obj any) { peers.nodeChanged(obj) },
		DeleteFunc: peers.nodeDeleted,
	}); err != nil {
		return err
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		inf.RunWithContext(ctx)
	}()
	defer func() { <-stopped }() // after ctx ended: waits for the informer
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil
	}
	peers.snapshot(inf.GetStore().List())
	<-ctx.Done()
	return nil
}

// nodeInformer lists and watches every Node through Options.Client,
// without resync.
func (m *Manager) nodeInformer() cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return m.o.Client.ListNodes(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return m.o.Client.WatchNodes(ctx, opts)
		},
	}
	return cache.NewSharedIndexInformerWithOptions(lw, &corev1.Node{}, cache.SharedIndexInformerOptions{ObjectDescription: "nodes"})
}

// slimNode keeps of a Node only what the watch reads (name, annotations,
// podCIDRs): the informer's store holds every node of the cluster, and
// their status (images, conditions) and managed fields are most of their
// size.
func slimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil // a DeletedFinalStateUnknown holds a slimmed node already
	}
	return &corev1.Node{
		TypeMeta: n.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Generation: n.Generation,
			Annotations: n.Annotations, DeletionTimestamp: n.DeletionTimestamp,
		},
		Spec: corev1.NodeSpec{PodCIDR: n.Spec.PodCIDR, PodCIDRs: n.Spec.PodCIDRs},
	}, nil
}

// peerSet is RunWatch's state: the peer leases the sink knows, by node.
type peerSet struct {
	m    *Manager
	sink subnet.PeerSink

	mu      sync.Mutex
	synced  bool                    // ReplacePeers sent; events go to UpdatePeers
	known   map[string]subnet.Lease // node name → lease delivered
	bad     map[string]string       // node name → unusable-lease reason logged
	lastErr string                  // last watch failure logged
}

// snapshot takes the synced informer's nodes as the first peer set.
func (p *peerSet) snapshot(objs []any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, obj := range objs {
		if n, ok := obj.(*corev1.Node); ok && n.Name != p.m.o.NodeName {
			p.apply(n.Name, n)
		}
	}
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

func (p *peerSet) nodeChanged(obj any) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	p.update(n.Name, n)
}

func (p *peerSet) nodeDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	p.update(n.Name, nil)
}

// update handles one node (nil: deleted) once the first snapshot is out.
func (p *peerSet) update(name string, n *corev1.Node) {
	if name == p.m.o.NodeName {
		p.m.pokeRenewal()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = "" // the watch delivers again
	if !p.synced {
		return // the snapshot will read the informer's store
	}
	events := p.apply(name, n)
	if len(events) == 0 {
		return
	}
	for _, e := range events {
		p.logPeer("peer "+e.Type.String(), name, e.Lease)
	}
	p.sink.UpdatePeers(events)
	p.updateMetrics()
}

// apply updates the known lease of node name (n nil: deleted) and returns
// the events that tell the sink.
func (p *peerSet) apply(name string, n *corev1.Node) []subnet.Event {
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
	case old.Subnet != cur.Subnet:
		p.known[name] = cur
		return []subnet.Event{{Type: subnet.EventRemoved, Lease: old}, {Type: subnet.EventAdded, Lease: cur}}
	case subnet.AttrsEqual(old.Attrs, cur.Attrs):
		return nil
	default:
		p.known[name] = cur
		return []subnet.Event{{Type: subnet.EventAdded, Lease: cur}}
	}
}

// leaseOf is node n's peer lease; has is false for a deleted node, a node
// that is not managed, and an unusable lease (logged once per reason).
func (p *peerSet) leaseOf(name string, n *corev1.Node) (subnet.Lease, bool) {
	if n == nil {
		delete(p.bad, name)
		return subnet.Lease{}, false
	}
	l, err := p.m.o.Annotations.NodeLease(n)
	if err == nil {
		if own := p.m.Lease().Subnet; own.IsValid() && own.Overlaps(l.Subnet) {
			err = errors.New("its podCIDR " + l.Subnet.String() + " overlaps ours " + own.String())
		}
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

func (p *peerSet) logPeer(msg, node string, l subnet.Lease) {
	p.m.log.Info(msg, "node", node, "subnet", l.Subnet, "public_ip", l.Attrs.PublicIP, "backend", l.Attrs.BackendType)
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
