package samesite

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// peerState is one candidate peer as the prober tracks it.
type peerState struct {
	cand    Candidate
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
	return p.private == q.private && p.mac == q.mac && p.cand.Subnet == q.cand.Subnet && p.key.Equal(q.key)
}

// errNotCandidate marks leases that are not same-site candidates.
var errNotCandidate = errors.New("not a same-site candidate")

// candidate decides whether a peer is worth probing and returns its
// state. A wrapped errNotCandidate says why not.
func (d *Detector) candidate(c Candidate) (*peerState, error) {
	private := c.Private.Unmap()
	switch {
	case !private.IsValid():
		return nil, fmt.Errorf("no OverlaydPrivateIP: %w", errNotCandidate)
	case private == c.PublicIP:
		return nil, fmt.Errorf("OverlaydPrivateIP %s is the PublicIP: %w", private, errNotCandidate)
	case !d.o.Local.Contains(private):
		return nil, fmt.Errorf("OverlaydPrivateIP %s is outside our underlay %s: %w", private, d.o.Local.Masked(), errNotCandidate)
	case private == d.o.Local.Addr():
		return nil, fmt.Errorf("OverlaydPrivateIP %s is our own bind address: %w", private, errNotCandidate)
	case c.Subnet == d.o.Self.Subnet:
		return nil, fmt.Errorf("own subnet %s: %w", c.Subnet, errNotCandidate)
	case c.Key == [32]byte{}:
		return nil, fmt.Errorf("no OverlaydKey (an older overlayd): its answers could not be verified: %w", errNotCandidate)
	}
	return &peerState{cand: c, private: private, mac: c.MAC, key: ed25519.PublicKey(c.Key[:])}, nil
}

// replaceCandidates makes the candidates those of cs.
func (d *Detector) replaceCandidates(cs []Candidate, now time.Time) {
	present := make(map[netip.Prefix]bool, len(cs))
	for _, c := range cs {
		present[c.Subnet] = true
		d.applyCandidate(c, now)
	}
	for s := range d.peers {
		if !present[s] {
			d.removePeer(s)
		}
	}
}

// applyCandidate adds, updates or drops the candidate of c's subnet. A
// candidate that names the same identity keeps its verdict but is
// re-probed now; a changed identity starts over, unverified.
func (d *Detector) applyCandidate(c Candidate, now time.Time) {
	p, err := d.candidate(c)
	if err != nil {
		d.log.Debug("same-site: peer not probed", "lease", subnet.KeyName(c.Subnet), "reason", err)
		d.removePeer(c.Subnet)
		return
	}
	old, ok := d.peers[c.Subnet]
	if ok && old.sameIdentity(p) {
		old.cand = c
		if !old.outstanding {
			old.due = now
		}
		return
	}
	if ok {
		d.removePeer(c.Subnet)
	}
	p.due = now
	d.peers[c.Subnet] = p
	d.metrics.candidates.Set(float64(len(d.peers)))
	d.log.Debug("same-site: probing candidate", "lease", subnet.KeyName(c.Subnet), "private", p.private)
}

// removePeer forgets a candidate; a verified one is reported unverified.
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
		d.o.Verdicts.SetVerdict(Verdict{Subnet: s})
	}
}

// setVerdict records a changed verdict and reports it.
func (d *Detector) setVerdict(p *peerState, verified bool) {
	if p.verified == verified {
		return
	}
	p.verified = verified
	v := Verdict{Subnet: p.cand.Subnet, MAC: p.mac, Key: p.cand.Key}
	if verified {
		v.Private = p.private
	}
	d.storeVerdict(v.Subnet, v.Private)
	d.o.Verdicts.SetVerdict(v)
}

// storeVerdict sets (valid private) or clears the verdict of s.
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
