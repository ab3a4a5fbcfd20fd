package backend

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/backend/internal/nl"
)

// NetlinkKernel is the real kernel for the Reconciler: a *netlink.Handle
// for single writes and lookups, plus a socket of its own on which the
// reconciler's full-pass dumps are read without a netlink.Neigh or
// netlink.Route per entry (see leanDumper) and the adds of a full pass
// are sent many requests to a datagram (see batchSender).
type NetlinkKernel struct {
	*netlink.Handle
	mu   sync.Mutex // guards sock and one
	sock *nl.Socket
	// one is the batch of a single write on sock (nexthop writes).
	one nl.Batch
	// mon is the subscription to the kernel's notifications (events.go),
	// read by the reconciler's loop alone.
	mon *nl.Monitor
}

var _ Kernel = (*NetlinkKernel)(nil)

// NewNetlinkKernel wraps h, which must be a handle on the namespace ns
// (netns.None() for the current one, as with netlink.NewHandle()). The
// caller still owns h; Close closes only what NewNetlinkKernel opened.
func NewNetlinkKernel(h *netlink.Handle, ns netns.NsHandle) (*NetlinkKernel, error) {
	if h == nil {
		return nil, fmt.Errorf("netlink kernel: handle is nil")
	}
	return newNetlinkKernel(h, ns, 0)
}

// newNetlinkKernel is NewNetlinkKernel with the notification socket's
// receive buffer (0: nl.DefaultMonitorBuffer). The subscription is made
// here, before the reconciler's first dump, so that no change between the
// two is missed.
func newNetlinkKernel(h *netlink.Handle, ns netns.NsHandle, monitorBuffer int) (*NetlinkKernel, error) {
	s, err := nl.Open(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink kernel: %w", err)
	}
	mon, err := nl.OpenMonitor(ns, nl.Groups, monitorBuffer)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("netlink kernel: %w", err)
	}
	// The echoes of the batches this socket sends are dropped in the
	// kernel (those of the handle's single writes are read, and change
	// nothing).
	if err := mon.IgnorePorts(s.Port()); err != nil {
		s.Close()
		mon.Close()
		return nil, fmt.Errorf("netlink kernel: %w", err)
	}
	return &NetlinkKernel{Handle: h, sock: s, mon: mon}, nil
}

var _ EventSource = (*NetlinkKernel)(nil)

// Subscribed implements EventSource.
func (k *NetlinkKernel) Subscribed() bool { return k.mon != nil }

// WaitEvents implements EventSource.
func (k *NetlinkKernel) WaitEvents(timeout time.Duration) (bool, error) { return k.mon.Wait(timeout) }

// DrainEvents implements EventSource.
func (k *NetlinkKernel) DrainEvents(each func(typ uint16, msg []byte)) (bool, error) {
	return k.mon.Drain(each)
}

// Close closes the dump and notification sockets; the reconciler using
// k must have stopped.
func (k *NetlinkKernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var err error
	if k.mon != nil {
		err = k.mon.Close()
		k.mon = nil
	}
	if k.sock == nil {
		return err
	}
	err = firstNonNil(k.sock.Close(), err)
	k.sock = nil
	return err
}

func (k *NetlinkKernel) dumpBelieved(b *believedState, o ownership) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sock == nil {
		return &dumpError{kind: kindNeigh, err: fmt.Errorf("dump %s entries: netlink kernel is closed", kindNeigh)}
	}
	return dumpBelievedOn(k.sock, b, o)
}

func (k *NetlinkKernel) sendBatch(b *nl.Batch) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sock == nil {
		b.FailAll(errors.New("netlink kernel is closed"))
		return
	}
	k.sock.SendBatch(b)
}

// nexthopKernel is a Kernel that writes nexthop objects and routes
// through them (NetlinkKernel), which vishvananda/netlink v1.3.1 cannot.
// Without it the reconciler uses onlink routes only.
type nexthopKernel interface {
	// nexthopSupport is nil when the kernel has nexthop objects.
	nexthopSupport() error
	nexthopReplace(id uint32, gw netip.Addr, link int) error
	nexthopDel(id uint32) error
	routeReplaceNH(dst netip.Prefix, priority int, id uint32) error
}

var _ nexthopKernel = (*NetlinkKernel)(nil)

// single sends the one request fill queues, on the dump socket.
func (k *NetlinkKernel) single(fill func(b *nl.Batch)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sock == nil {
		return errors.New("netlink kernel is closed")
	}
	k.one.Reset()
	fill(&k.one)
	k.sock.SendBatch(&k.one)
	return k.one.Err(0)
}

func (k *NetlinkKernel) nexthopSupport() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sock == nil {
		return errors.New("netlink kernel is closed")
	}
	err := k.sock.DumpNexthops(0, func([]byte) error { return nil })
	switch {
	case err == nil, errors.Is(err, netlink.ErrDumpInterrupted):
		return nil // an interrupted dump still shows the kernel has them
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL), errors.Is(err, unix.EAFNOSUPPORT),
		errors.Is(err, unix.EPROTONOSUPPORT):
		return fmt.Errorf("dump nexthop objects: %w: %w", err, errNoNexthops)
	}
	return fmt.Errorf("dump nexthop objects: %w", err)
}

// errNoNexthops marks the answer of a kernel without nexthop objects
// (before Linux 5.3, or built without them); any other failure of the
// check is retried.
var errNoNexthops = errors.New("no nexthop objects in this kernel")

func (k *NetlinkKernel) nexthopReplace(id uint32, gw netip.Addr, link int) error {
	return k.single(func(b *nl.Batch) { b.AddNexthop(id, gw, link) })
}

func (k *NetlinkKernel) nexthopDel(id uint32) error {
	return k.single(func(b *nl.Batch) { b.DelNexthop(id) })
}

func (k *NetlinkKernel) routeReplaceNH(dst netip.Prefix, priority int, id uint32) error {
	return k.single(func(b *nl.Batch) { b.AddRoute(nl.RouteSpec{Dst: dst, NHID: id, Priority: priority}) })
}
