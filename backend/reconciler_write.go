package backend

import (
	"errors"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// writeOp is the op label of writes_total and errors_total.
type writeOp uint8

const (
	opAdd writeOp = iota
	opDel
	opDump
	numOps
)

func (o writeOp) String() string {
	return [...]string{"add", "del", "dump"}[o]
}

// tolerated reports errors that mean the kernel already is as we want it.
func tolerated(op writeOp, err error) bool {
	if op == opDel {
		return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)
	}
	return errors.Is(err, unix.EEXIST)
}

// wrote accounts one write in the pass and the metrics, and returns the
// error that remains once tolerated errnos are taken as success.
func (r *Reconciler) wrote(st *passStats, kind entryKind, op writeOp, drift bool, err error) error {
	r.metrics.writes[kind][op].Inc()
	if err != nil && !tolerated(op, err) {
		r.metrics.errors[kind][op].Inc()
		return err
	}
	st.count(kind, op)
	if drift {
		st.drift[kind]++
		r.metrics.drift[kind].Inc()
	}
	return nil
}

// settled: a successful write of kind would change nothing of p's
// (settle with no error is a no-op).
func settled(kind entryKind, p *peer) bool {
	return p.pending&maskOf(kind) == 0 && (p.pending != 0 || p.err == nil)
}

// settle records the outcome for the peer owning an entry.
func (r *Reconciler) settle(kind entryKind, p *peer, err error) {
	was, pending, perr := p.pending, p.pending, p.err
	if err != nil {
		pending |= maskOf(kind)
		perr = err
	} else if pending &^= maskOf(kind); pending == 0 {
		perr = nil
	}
	if pending == was && perr == p.err {
		return
	}
	r.setPending(p, pending, perr)
}

// peerPending marks every entry of an existing peer unconfirmed after its
// desired entries changed.
func (r *Reconciler) peerPending(p *peer) { r.setPending(p, p.kinds(), nil) }

// setPending changes what is pending of a peer, keeping the count of
// programmed peers.
func (r *Reconciler) setPending(p *peer, pending entryMask, err error) {
	switch {
	case p.pending == 0 && pending != 0:
		r.programmed--
	case p.pending != 0 && pending == 0:
		r.programmed++
	}
	r.want.mu.Lock()
	p.pending, p.err = pending, err
	r.want.mu.Unlock()
}

// writeScratch holds the netlink messages of one write, reused so that a
// write allocates nothing on our side (the handle serialises them before
// returning; the fake copies).
type writeScratch struct {
	n       netlink.Neigh
	rt      netlink.Route
	dst     net.IPNet
	ipBuf   [16]byte
	gwBuf   [16]byte
	maskBuf [16]byte
	macBuf  [6]byte
}

func putAddr(buf *[16]byte, a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	if a.Is4() {
		b := a.As4()
		copy(buf[:], b[:])
		return buf[:4]
	}
	*buf = a.As16()
	return buf[:]
}

func (s *writeScratch) hw(mac [6]byte) net.HardwareAddr {
	s.macBuf = mac
	return s.macBuf[:]
}

func (s *writeScratch) neigh(o ownership, ip netip.Addr, mac [6]byte) *netlink.Neigh {
	s.n = netlink.Neigh{LinkIndex: o.link, Family: o.family, State: netlink.NUD_PERMANENT,
		IP: putAddr(&s.ipBuf, ip), HardwareAddr: s.hw(mac)}
	return &s.n
}

func (s *writeScratch) neighDel(o ownership, ip netip.Addr) *netlink.Neigh {
	s.n = netlink.Neigh{LinkIndex: o.link, Family: o.family, IP: putAddr(&s.ipBuf, ip)}
	return &s.n
}

// fdb is `bridge fdb replace <mac> dev <link> dst <dst> self permanent`
// (and the matching delete).
func (s *writeScratch) fdb(link int, mac [6]byte, dst netip.Addr) *netlink.Neigh {
	s.n = netlink.Neigh{LinkIndex: link, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
		Flags: netlink.NTF_SELF, IP: putAddr(&s.ipBuf, dst), HardwareAddr: s.hw(mac)}
	return &s.n
}

// route is `<dst> via <gw> dev <link> [onlink]` in the main table, scope
// as given, protocol left to the default (boot) like flannel.
func (s *writeScratch) route(key routeKey, link int, gw netip.Addr, onlink bool, scope netlink.Scope) *netlink.Route {
	dst := key.dst()
	ip := putAddr(&s.ipBuf, dst.Addr())
	mask := s.maskBuf[:len(ip)]
	clear(mask)
	for i := 0; i < dst.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	s.dst = net.IPNet{IP: ip, Mask: mask}
	s.rt = netlink.Route{LinkIndex: link, Dst: &s.dst, Gw: putAddr(&s.gwBuf, gw), Table: unix.RT_TABLE_MAIN,
		Scope: scope, Priority: key.priority()}
	if onlink {
		s.rt.Flags = int(netlink.FLAG_ONLINK)
	}
	return &s.rt
}
