package backend

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/vxlandata"
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
	mac      [6]byte
	// dst is the underlay address: the FDB destination, or the gateway of
	// the direct route (ReconcilerOptions.PeerDst).
	dst netip.Addr
	// direct: DirectRouting chose one route via dst on the external link
	// instead of neighbour + FDB + onlink route.
	direct bool
	// nhid is the peer's nexthop object in nexthop route mode (0: the
	// route names its gateway itself); set by desiredState.claim.
	nhid uint32

	// pending holds the kinds whose entry is not yet confirmed in the
	// kernel; err is the last write error of any of them.
	pending entryMask
	err     error
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

// errIgnoredLease marks leases that are not ours to program and not an
// error either (another backend type, our own subnet).
var errIgnoredLease = errors.New("lease ignored")

// peerRules is what deciding about a lease needs from the options.
type peerRules struct {
	network   netip.Prefix
	ownSubnet netip.Prefix
	peerDst   func(subnet.Lease) netip.Addr
}

// parsePeer turns a lease into a peer (direct not yet decided). It returns
// an error wrapping errIgnoredLease for leases that are skipped silently,
// and another error, naming the field at fault, for malformed leases.
func (pr peerRules) parsePeer(l subnet.Lease) (peer, error) {
	switch {
	case l.Attrs.BackendType != subnet.BackendVXLAN:
		return peer{}, fmt.Errorf("BackendType %q is not %q: %w", l.Attrs.BackendType, subnet.BackendVXLAN, errIgnoredLease)
	case l.Subnet == pr.ownSubnet:
		return peer{}, fmt.Errorf("own subnet %s: %w", l.Subnet, errIgnoredLease)
	case !l.Subnet.IsValid() || l.Subnet != l.Subnet.Masked():
		return peer{}, fmt.Errorf("subnet %s is not a masked prefix", l.Subnet)
	case l.Subnet.Addr().Is4() != pr.network.Addr().Is4() ||
		l.Subnet.Bits() <= pr.network.Bits() || !pr.network.Contains(l.Subnet.Addr()):
		return peer{}, fmt.Errorf("subnet %s is not inside the network %s", l.Subnet, pr.network)
	}
	data, err := vxlandata.Unmarshal(l.Attrs.BackendData)
	if err != nil {
		return peer{}, err
	}
	dst := pr.peerDst(l)
	if !dst.IsValid() {
		return peer{}, fmt.Errorf("no underlay address for the FDB entry (PublicIP %v)", l.Attrs.PublicIP)
	}
	p := peer{subnet: l.Subnet, publicIP: l.Attrs.PublicIP, dst: dst.Unmap()}
	copy(p.mac[:], data.VtepMAC)
	return p, nil
}

// macString formats a MAC key. Taking the array by value keeps callers'
// keys on the stack (slicing a local that escapes would move it to the
// heap on every call, not only on the error path).
func macString(m [6]byte) string { return net.HardwareAddr(m[:]).String() }

// publicIPOf is the default PeerDst: the lease's PublicIP.
func publicIPOf(l subnet.Lease) netip.Addr { return l.Attrs.PublicIP }
