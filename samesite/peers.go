package samesite

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/vxlandata"
)

// peerState is one candidate peer as the prober tracks it.
type peerState struct {
	lease   subnet.Lease
	private netip.Addr        // OverlaydPrivateIP: where probes go
	mac     [6]byte           // the VTEP MAC the lease names
	key     ed25519.PublicKey // the lease's OverlaydKey: verifies answers

	verified bool
	// outstanding: the probe with nonce has not been answered yet.
	outstanding bool
	nonce       nonce
	// missed counts unanswered probes in a row.
	missed int
	// due is when the next probe (or the timeout check) is.
	due time.Time
}

// sameIdentity reports whether a lease still names what q was verified
// against: private address, subnet and MAC.
func (p *peerState) sameIdentity(q *peerState) bool {
	return p.private == q.private && p.mac == q.mac && p.lease.Subnet == q.lease.Subnet && p.key.Equal(q.key)
}

// errNotCandidate marks leases that are not same-site candidates.
var errNotCandidate = errors.New("not a same-site candidate")

// candidate decides whether a peer lease is worth probing and returns its
// state. A wrapped errNotCandidate says why not.
func (d *Detector) candidate(l subnet.Lease) (*peerState, error) {
	a := l.Attrs
	private := a.PrivateIP.Unmap()
	switch {
	case a.BackendType != subnet.BackendVXLAN:
		return nil, fmt.Errorf("BackendType %q: %w", a.BackendType, errNotCandidate)
	case !private.IsValid():
		return nil, fmt.Errorf("no OverlaydPrivateIP: %w", errNotCandidate)
	case private == a.PublicIP:
		return nil, fmt.Errorf("OverlaydPrivateIP %s is the PublicIP: %w", private, errNotCandidate)
	case !d.o.Local.Contains(private):
		return nil, fmt.Errorf("OverlaydPrivateIP %s is outside our underlay %s: %w", private, d.o.Local.Masked(), errNotCandidate)
	case private == d.o.Local.Addr():
		return nil, fmt.Errorf("OverlaydPrivateIP %s is our own bind address: %w", private, errNotCandidate)
	case l.Subnet == d.o.Self.Subnet:
		return nil, fmt.Errorf("own subnet %s: %w", l.Subnet, errNotCandidate)
	case len(a.SameSiteKey) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("no OverlaydKey (an older overlayd): its answers could not be verified: %w", errNotCandidate)
	}
	data, err := vxlandata.Unmarshal(a.BackendData)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, errNotCandidate)
	}
	p := &peerState{lease: l, private: private, key: ed25519.PublicKey(a.SameSiteKey)}
	copy(p.mac[:], data.VtepMAC)
	return p, nil
}

// replacePeers makes the candidates those of leases.
func (d *Detector) replacePeers(leases []subnet.Lease, now time.Time) {
	present := make(map[netip.Prefix]bool, len(leases))
	for _, l := range leases {
		present[l.Subnet] = true
		if !l.Unreadable { // kept as it is: see sink.UpdatePeers
			d.applyLease(l, now)
		}
	}
	for s := range d.peers {
		if !present[s] {
			d.removePeer(s)
		}
	}
}

// applyLease adds, updates or drops the candidate of l's subnet. A lease
// that names the same identity keeps its verdict but is re-probed now; a
// changed identity starts over, unverified. The caller passes the lease on
// afterwards, so a cleared verdict needs no re-delivery.
func (d *Detector) applyLease(l subnet.Lease, now time.Time) {
	p, err := d.candidate(l)
	if err != nil {
		d.log.Debug("same-site: peer not probed", "lease", subnet.KeyName(l.Subnet), "reason", err)
		d.removePeer(l.Subnet)
		return
	}
	old, ok := d.peers[l.Subnet]
	if ok && old.sameIdentity(p) {
		old.lease = l
		if !old.outstanding {
			old.due = now
		}
		return
	}
	if ok {
		d.removePeer(l.Subnet)
	}
	p.due = now
	d.peers[l.Subnet] = p
	d.metrics.candidates.Set(float64(len(d.peers)))
	d.log.Debug("same-site: probing candidate", "lease", subnet.KeyName(l.Subnet), "private", p.private)
}

// removePeer forgets a candidate and its verdict, without re-delivery.
func (d *Detector) removePeer(s netip.Prefix) {
	p, ok := d.peers[s]
	if !ok {
		return
	}
	if p.outstanding {
		delete(d.byNonce, p.nonce)
	}
	delete(d.peers, s)
	d.metrics.candidates.Set(float64(len(d.peers)))
	if p.verified {
		d.storeVerdict(s, netip.Addr{})
	}
}

// setVerdict records a changed verdict and re-delivers the peer's lease
// so that the reconciler asks PeerDst again.
func (d *Detector) setVerdict(p *peerState, verified bool) {
	if p.verified == verified {
		return
	}
	p.verified = verified
	private := netip.Addr{}
	if verified {
		private = p.private
	}
	d.storeVerdict(p.lease.Subnet, private)
	d.next.UpdatePeers([]subnet.Event{{Type: subnet.EventAdded, Lease: p.lease}})
}

// storeVerdict sets (valid private) or clears the PeerDst answer of s.
func (d *Detector) storeVerdict(s netip.Prefix, private netip.Addr) {
	d.vmu.Lock()
	if private.IsValid() {
		d.verified[s] = private
	} else {
		delete(d.verified, s)
	}
	n := len(d.verified)
	d.vmu.Unlock()
	d.metrics.verified.Set(float64(n))
}
