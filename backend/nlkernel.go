package backend

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/overlayd/overlayd/backend/internal/nl"
)

// NetlinkKernel is the real kernel for the Reconciler: a *netlink.Handle
// for single writes and lookups, plus a socket of its own on which the
// reconciler's full-pass dumps are read without a netlink.Neigh or
// netlink.Route per entry (see leanDumper) and the adds of a full pass
// are sent many requests to a datagram (see batchSender).
type NetlinkKernel struct {
	*netlink.Handle
	mu   sync.Mutex // guards sock
	sock *nl.Socket
}

var _ Kernel = (*NetlinkKernel)(nil)

// NewNetlinkKernel wraps h, which must be a handle on the namespace ns
// (netns.None() for the current one, as with netlink.NewHandle()). The
// caller still owns h; Close closes only what NewNetlinkKernel opened.
func NewNetlinkKernel(h *netlink.Handle, ns netns.NsHandle) (*NetlinkKernel, error) {
	if h == nil {
		return nil, fmt.Errorf("netlink kernel: handle is nil")
	}
	s, err := nl.Open(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink kernel: %w", err)
	}
	return &NetlinkKernel{Handle: h, sock: s}, nil
}

// Close closes the dump socket.
func (k *NetlinkKernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sock == nil {
		return nil
	}
	err := k.sock.Close()
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
