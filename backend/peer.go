package backend

import (
	"net"
	"net/netip"

	"github.com/overlayd/overlayd/peerset"
)

// entryKind is one of the kernel entries a VXLAN peer needs: neighbour,
// FDB entry and route, plus a nexthop object in nexthop route mode.
type entryKind uint8

const (
	kindNeigh entryKind = iota
	kindFDB
	kindRoute
	kindNexthop
	numKinds
)

// String returns the metric label of the kind.
func (k entryKind) String() string {
	switch k {
	case kindNeigh:
		return "neighbour"
	case kindFDB:
		return "fdb"
	case kindNexthop:
		return "nexthop"
	default:
		return "route"
	}
}

// entryMask is a set of entry kinds, one bit per kind.
type entryMask uint8

func maskOf(k entryKind) entryMask { return 1 << k }

// peer is one remote node as the reconciler programs it: what its lease
// says, what we decided about it, and how far its entries got.
type peer struct {
	subnet   netip.Prefix
	publicIP netip.Addr
	// dst is the underlay address: the FDB destination, or the gateway of
	// the direct route (peerset.Peer.Dst).
	dst netip.Addr
	// err is the last write error of any kind in pending.
	err error
	// nhid is the peer's nexthop object in nexthop route mode (0: the
	// route names its gateway itself); set by desiredState.claim.
	nhid uint32
	mac  [6]byte
	// direct: DirectRouting chose one route via dst on the external link
	// instead of neighbour + FDB + onlink route.
	direct bool
	// pending holds the kinds whose entry is not yet confirmed in the
	// kernel.
	pending entryMask
	// The fields are ordered so that the struct is 112 bytes, not 128:
	// one is held per peer.
}

// programmed reports whether all of the peer's entries are in the kernel.
func (p *peer) programmed() bool { return p.pending == 0 }

// sameEntries reports whether p and q need exactly the same kernel
// entries, so that replacing one by the other costs no write.
func (p *peer) sameEntries(q *peer) bool {
	return p.subnet == q.subnet && p.mac == q.mac && p.dst == q.dst && p.direct == q.direct
}

// kinds returns the entry kinds the peer needs.
func (p *peer) kinds() entryMask {
	if p.direct {
		return maskOf(kindRoute)
	}
	m := maskOf(kindNeigh) | maskOf(kindFDB) | maskOf(kindRoute)
	if p.nhid != 0 {
		m |= maskOf(kindNexthop)
	}
	return m
}

// peerFrom is the reconciler's peer for a decoded one (direct not yet
// decided).
func peerFrom(p peerset.Peer) peer {
	return peer{subnet: p.Subnet, publicIP: p.PublicIP, mac: p.MAC, dst: p.Dst}
}

// macString formats a MAC key. Taking the array by value keeps callers'
// keys on the stack (slicing a local that escapes would move it to the
// heap on every call, not only on the error path).
func macString(m [6]byte) string { return net.HardwareAddr(m[:]).String() }
