package samesite

import (
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// probeDue sends the probes that are due at now, counting the unanswered
// ones as missed, and returns when the next one is due (zero: no
// candidates). The caller holds mu.
func (d *Detector) probeDue(now time.Time) time.Time {
	var next time.Time
	for _, p := range d.peers {
		if !p.due.After(now) {
			d.noteMiss(p)
			d.sendProbe(p)
			p.due = now.Add(d.waitAfterProbe(p))
		}
		if next.IsZero() || p.due.Before(next) {
			next = p.due
		}
	}
	return next
}

// noteMiss counts an unanswered probe; a verified peer that missed
// MaxMissed in a row falls back to its public address.
func (d *Detector) noteMiss(p *peerState) {
	if !p.outstanding {
		return
	}
	p.missed++
	if p.verified && p.missed >= d.o.MaxMissed {
		d.metrics.fallbacks.Inc()
		d.log.Warn("same-site peer stopped answering; sending its VXLAN to the public address again",
			"lease", subnet.KeyName(p.cand.Subnet), "private", p.private, "public", p.cand.PublicIP, "missed", p.missed)
		d.setVerdict(p, false)
	}
}

// waitAfterProbe: a verified peer has Timeout to answer; a candidate is
// re-probed with exponential backoff from Timeout up to Interval.
func (d *Detector) waitAfterProbe(p *peerState) time.Duration {
	if p.verified {
		return d.o.Timeout
	}
	wait := d.o.Timeout
	for i := 0; i < p.missed && wait < d.o.Interval; i++ {
		wait *= 2
	}
	return min(wait, d.o.Interval)
}

// sendProbe sends a probe with a fresh nonce; only the latest nonce of a
// peer is accepted. A send error counts as a miss later, like a loss.
func (d *Detector) sendProbe(p *peerState) {
	if p.outstanding {
		delete(d.byNonce, p.nonce)
	}
	if _, err := io.ReadFull(d.o.Rand, p.nonce[:]); err != nil {
		d.log.Warn("same-site: no random nonce; probe not sent", "err", err)
		p.outstanding = false
		return
	}
	p.outstanding = true
	d.byNonce[p.nonce] = p.cand.Subnet
	to := netip.AddrPortFrom(p.private, d.o.Port)
	d.metrics.probesSent.Inc()
	if _, err := d.o.Conn.WriteTo(message{kind: kindProbe, nonce: p.nonce}.marshal(), to); err != nil {
		d.log.Debug("same-site: probe not sent", "to", to, "err", err)
	}
}

// handlePacket answers a probe or checks an answer.
func (d *Detector) handlePacket(from netip.AddrPort, b []byte) {
	m, err := parseMessage(b)
	if err != nil {
		d.metrics.malformed.Inc()
		d.log.Debug("same-site: ignoring a datagram", "from", from, "err", err)
		return
	}
	if m.kind == kindProbe {
		d.respond(from, m)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.checkAnswer(from, m, d.o.Clock.Now())
}

// respond answers probes from inside our underlay subnet with our
// identity, signed for that prober and our address (sign.go); the answer
// is no longer than the probe.
func (d *Detector) respond(from netip.AddrPort, probe message) {
	if !d.o.Local.Contains(from.Addr().Unmap()) {
		d.metrics.probesRefused.Inc()
		d.log.Debug("same-site: probe from outside our underlay subnet not answered", "from", from, "underlay", d.o.Local.Masked())
		return
	}
	var mac [6]byte
	copy(mac[:], d.o.Self.MAC)
	answer := signAnswer(d.o.Self.Key, probe, from.Addr().Unmap(), d.o.Local.Addr(), d.o.Self.Subnet, mac)
	if _, err := d.o.Conn.WriteTo(answer.marshal(), from); err != nil {
		d.log.Debug("same-site: answer not sent", "to", from, "err", err)
		return
	}
	d.metrics.probesAnswered.Inc()
}

// checkAnswer verifies a peer when the answer carries the nonce of its
// latest probe, comes from its private address and port, names the subnet
// and MAC of its lease, and is signed with the lease's key over all that,
// our address and the address probed. A nonce is used once: an accepted
// answer consumes it, so a replay finds no probe; an answer that fails a
// check does not, so a stranger cannot spoil the real peer's answer.
// The caller holds mu.
func (d *Detector) checkAnswer(from netip.AddrPort, m message, now time.Time) {
	s, ok := d.byNonce[m.nonce]
	if !ok {
		d.metrics.answers(resultUnknownNonce).Inc()
		d.log.Debug("same-site: answer to no outstanding probe", "from", from, "nonce", m.nonce)
		return
	}
	p := d.peers[s]
	if err := d.answerMismatch(p, from, m); err != nil {
		d.log.Debug("same-site: answer rejected; the peer is not verified by it", "lease", subnet.KeyName(s), "err", err)
		return
	}
	delete(d.byNonce, m.nonce)
	d.metrics.answers(resultAccepted).Inc()
	p.outstanding, p.missed, p.due = false, 0, now.Add(d.o.Interval)
	if !p.verified {
		d.log.Info("same-site peer verified; sending its VXLAN to the private address",
			"lease", subnet.KeyName(s), "private", p.private, "public", p.cand.PublicIP)
		d.setVerdict(p, true)
	}
}

// answerMismatch says why an answer does not verify p, counting it.
func (d *Detector) answerMismatch(p *peerState, from netip.AddrPort, m message) error {
	want := netip.AddrPortFrom(p.private, d.o.Port)
	if netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != want {
		d.metrics.answers(resultWrongSource).Inc()
		return fmt.Errorf("answer came from %s, probe went to %s", from, want)
	}
	if m.subnet != p.cand.Subnet || m.mac != p.mac {
		d.metrics.answers(resultWrongIdentity).Inc()
		return fmt.Errorf("the host at %s leases %s with VTEP MAC %s, the peer's lease says %s and %s (another site's host with the same private address)",
			from.Addr(), m.subnet, macString(m.mac), p.cand.Subnet, macString(p.mac))
	}
	if !verifyAnswer(p.key, m, m.nonce, d.o.Local.Addr(), p.private, p.cand.Subnet, p.mac) {
		d.metrics.answers(resultBadSignature).Inc()
		return fmt.Errorf("the answer from %s is not signed by %s's OverlaydKey for this probe", from, subnet.KeyName(p.cand.Subnet))
	}
	return nil
}
