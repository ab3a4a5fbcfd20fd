package main

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// watchBuffer is the kernel receive buffer of each subscription socket:
// a cold sync of 10,000 peers sends 30,000 notifications in about a
// second, and an overflow (ENOBUFS) would lose some of them.
const (
	watchBuffer  = 64 << 20
	watchChanLen = 1 << 16
)

// kernelWatch follows the route and neighbour notifications of the node's
// namespace and keeps the set of per-peer entries present (permanent
// neighbours and routes with a gateway inside the network, permanent
// unicast FDB entries), stamping each notification when it arrives. Only
// overlayd writes such entries in the node namespace.
type kernelWatch struct {
	network netip.Prefix
	done    chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	routes  map[netip.Prefix]struct{}
	neighs  map[netip.Addr]struct{}
	fdb     map[[6]byte]struct{}
	notes   int // notifications about per-peer entries since resetNotes
	waiters map[routeWait]chan time.Time
	err     error
}

// routeWait is a route appearing (present) or going away.
type routeWait struct {
	dst     netip.Prefix
	present bool
}

// startKernelWatch subscribes inside the named namespace.
func startKernelWatch(namespace string, network netip.Prefix) (*kernelWatch, error) {
	w := &kernelWatch{
		network: network,
		done:    make(chan struct{}),
		routes:  map[netip.Prefix]struct{}{},
		neighs:  map[netip.Addr]struct{}{},
		fdb:     map[[6]byte]struct{}{},
		waiters: map[routeWait]chan time.Time{},
	}
	ns, err := netns.GetFromName(namespace)
	if err != nil {
		return nil, fmt.Errorf("kernel watch: open netns %s: %w", namespace, err)
	}
	defer ns.Close()
	routeCh := make(chan netlink.RouteUpdate, watchChanLen)
	neighCh := make(chan netlink.NeighUpdate, watchChanLen)
	onErr := func(err error) { w.fail(fmt.Errorf("kernel watch in %s: %w", namespace, err)) }
	if err := netlink.RouteSubscribeWithOptions(routeCh, w.done, netlink.RouteSubscribeOptions{
		Namespace: &ns, ErrorCallback: onErr, ReceiveBufferSize: watchBuffer, ReceiveBufferForceSize: true,
	}); err != nil {
		return nil, fmt.Errorf("kernel watch: subscribe to routes in %s: %w", namespace, err)
	}
	if err := netlink.NeighSubscribeWithOptions(neighCh, w.done, netlink.NeighSubscribeOptions{
		Namespace: &ns, ErrorCallback: onErr, ReceiveBufferSize: watchBuffer, ReceiveBufferForceSize: true,
	}); err != nil {
		close(w.done)
		return nil, fmt.Errorf("kernel watch: subscribe to neighbours in %s: %w", namespace, err)
	}
	w.wg.Add(2)
	go consume(w, routeCh, func(u *netlink.RouteUpdate) { w.onRoute(time.Now(), u) })
	go consume(w, neighCh, w.onNeigh)
	return w, nil
}

// Close ends the subscriptions.
func (w *kernelWatch) Close() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
}

func (w *kernelWatch) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// Err is the first subscription error (a lost notification makes the
// counts unreliable).
func (w *kernelWatch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// consume hands each update on ch to handle until the watch is closed or
// ch is.
func consume[U any](w *kernelWatch, ch <-chan U, handle func(*U)) {
	defer w.wg.Done()
	for {
		select {
		case <-w.done:
			return
		case u, ok := <-ch:
			if !ok {
				return
			}
			handle(&u)
		}
	}
}

func (w *kernelWatch) onRoute(at time.Time, u *netlink.RouteUpdate) {
	r := &u.Route
	if r.Dst == nil || r.Gw == nil || r.Table != unix.RT_TABLE_MAIN {
		return
	}
	dst := prefixOf(r.Dst.IP, r.Dst.Mask)
	if !dst.IsValid() || dst.Bits() <= w.network.Bits() || !w.network.Contains(dst.Addr()) {
		return
	}
	present := u.Type == unix.RTM_NEWROUTE
	w.mu.Lock()
	defer w.mu.Unlock()
	w.notes++
	if present {
		w.routes[dst] = struct{}{}
	} else {
		delete(w.routes, dst)
	}
	if ch, ok := w.waiters[routeWait{dst: dst, present: present}]; ok {
		ch <- at
		delete(w.waiters, routeWait{dst: dst, present: present})
	}
}

func (w *kernelWatch) onNeigh(u *netlink.NeighUpdate) {
	n := &u.Neigh
	if n.State&netlink.NUD_PERMANENT == 0 && u.Type == unix.RTM_NEWNEIGH {
		return
	}
	present := u.Type == unix.RTM_NEWNEIGH
	w.mu.Lock()
	defer w.mu.Unlock()
	switch n.Family {
	case unix.AF_INET:
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || !w.network.Contains(ip.Unmap()) {
			return
		}
		setPresence(w.neighs, ip.Unmap(), present)
	case unix.AF_BRIDGE:
		if len(n.HardwareAddr) != 6 || n.HardwareAddr[0]&1 == 1 || n.IP == nil {
			return
		}
		setPresence(w.fdb, [6]byte(n.HardwareAddr), present)
	default:
		return
	}
	w.notes++
}

func setPresence[K comparable](set map[K]struct{}, k K, present bool) {
	if present {
		set[k] = struct{}{}
	} else {
		delete(set, k)
	}
}

// resetNotes zeroes the notification counter and returns its old value.
func (w *kernelWatch) resetNotes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.notes
	w.notes = 0
	return n
}

// expectRoute registers interest in dst appearing (present) or going
// away; the channel receives the notification's arrival time. Register
// before causing the change.
func (w *kernelWatch) expectRoute(dst netip.Prefix, present bool) <-chan time.Time {
	ch := make(chan time.Time, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waiters[routeWait{dst: dst, present: present}] = ch
	return ch
}

// cancelRoute drops a registration that timed out.
func (w *kernelWatch) cancelRoute(dst netip.Prefix, present bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.waiters, routeWait{dst: dst, present: present})
}

var errWatchTimeout = errors.New("timed out")
