package backendtest

import (
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/backend/internal/nl"
)

// Notifications (backend.EventSource). After EnableEvents the fake reports
// every change of its neighbours, FDB entries, routes and links as the
// rtnetlink notification the kernel would send, in the kernel's wire
// format, queued up to a capacity: beyond it they are dropped and the
// next DrainEvents reports the loss, as ENOBUFS does. Like the kernel, a
// deleted link's routes go without a notification of their own.

type notification struct {
	typ  uint16
	data []byte
}

type eventQueue struct {
	capacity int
	queued   []notification
	lost     bool
	ready    chan struct{}
}

// EnableEvents starts the subscription with room for capacity queued
// notifications (at least 1). Without it Subscribed is false, and a
// reconciler dumps on every full pass.
func (k *FakeKernel) EnableEvents(capacity int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.events = &eventQueue{capacity: max(capacity, 1), ready: make(chan struct{}, 1)}
}

// Subscribed implements backend.EventSource.
func (k *FakeKernel) Subscribed() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.events != nil
}

// WaitEvents implements backend.EventSource.
func (k *FakeKernel) WaitEvents(timeout time.Duration) (bool, error) {
	k.mu.Lock()
	q := k.events
	k.mu.Unlock()
	if q == nil {
		time.Sleep(timeout)
		return false, nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-q.ready:
		return true, nil
	case <-t.C:
		return false, nil
	}
}

// DrainEvents implements backend.EventSource.
func (k *FakeKernel) DrainEvents(each func(typ uint16, msg []byte)) (bool, error) {
	k.mu.Lock()
	q := k.events
	if q == nil {
		k.mu.Unlock()
		return false, nil
	}
	queued, lost := q.queued, q.lost
	q.queued, q.lost = nil, false
	k.mu.Unlock()
	for _, n := range queued {
		each(n.typ, n.data)
	}
	return lost, nil
}

// notify queues one notification. Callers hold k.mu.
func (k *FakeKernel) notify(typ uint16, data []byte) {
	q := k.events
	if q == nil {
		return
	}
	if len(q.queued) >= q.capacity {
		q.lost = true
	} else {
		q.queued = append(q.queued, notification{typ: typ, data: data})
	}
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (k *FakeKernel) notifyNeigh(typ uint16, n netlink.Neigh) {
	if k.events == nil {
		return
	}
	k.notify(typ, nl.NeighPayload(uint8(n.Family), n.LinkIndex, uint16(n.State), uint8(n.Flags), addrOf(n.IP), n.HardwareAddr))
}

func (k *FakeKernel) notifyFDB(typ uint16, link int, mac net.HardwareAddr, r fdbRemote) {
	if k.events == nil {
		return
	}
	k.notify(typ, nl.NeighPayload(unix.AF_BRIDGE, link, uint16(r.state), uint8(r.flags), r.dst, mac))
}

func (k *FakeKernel) notifyRoute(typ uint16, r netlink.Route) {
	if k.events == nil || r.Dst == nil {
		return
	}
	ones, _ := r.Dst.Mask.Size()
	dst := netip.PrefixFrom(addrOf(r.Dst.IP), ones)
	spec := nl.RouteSpec{Dst: dst, Gw: addrOf(r.Gw), Onlink: r.Flags&int(netlink.FLAG_ONLINK) != 0,
		Oif: r.LinkIndex, Priority: r.Priority}
	data := nl.RoutePayload(spec, r.Table, uint8(r.Scope))
	data[5] = uint8(r.Protocol)
	k.notify(typ, data)
}

func (k *FakeKernel) notifyLink(typ uint16, index int) {
	if k.events == nil {
		return
	}
	// The fake's links are up while they exist.
	k.notify(typ, nl.LinkPayload(index, typ == unix.RTM_NEWLINK))
}
