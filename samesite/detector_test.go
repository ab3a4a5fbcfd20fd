package samesite

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

// labSites is the lab's SameSite layout: a and b share VPC 1 (private .2
// and .3), c is alone in VPC 2 with the same private address as a.
func labSites(t *testing.T) (clock *subnettest.Clock, a, b, c *host) {
	t.Helper()
	clock = subnettest.NewClock(testStart)
	vpc1, vpc2 := newFakeNet(), newFakeNet()
	a = newHost(t, vpc1, clock, "a", 2, 1)
	b = newHost(t, vpc1, clock, "b", 3, 2)
	c = newHost(t, vpc2, clock, "c", 2, 3)
	feedPeers(a, b, c)
	return clock, a, b, c
}

// probedSites is labSites after one round of probes and answers: a and
// b have verified each other, c is left on its public address.
func probedSites(t *testing.T) (clock *subnettest.Clock, a, b, c *host) {
	t.Helper()
	clock, a, b, c = labSites(t)
	probe(a, b, c)
	pump(a, b, c)
	return clock, a, b, c
}

func wantDst(t *testing.T, from, to *host, want netip.Addr) {
	t.Helper()
	if got := dst(from, to.lease); got != want {
		t.Errorf("%s: destination of %s's lease = %s, want %s", from.name, to.name, got, want)
	}
}

func TestOnlyTheSameSitePeerIsVerified(t *testing.T) {
	_, a, b, c := labSites(t)
	// Before any answer every peer goes through its public address.
	wantDst(t, a, b, b.lease.Attrs.PublicIP)
	probe(a, b, c)
	pump(a, b, c)

	wantDst(t, a, b, b.lease.Attrs.PrivateIP)
	wantDst(t, b, a, a.lease.Attrs.PrivateIP)
	// c's private address is a's: b's probe to 198.51.100.2 reaches a,
	// whose answer names a's subnet and MAC, not c's.
	wantDst(t, b, c, c.lease.Attrs.PublicIP)
	if got := b.metric(t, "answers_received_total", resultWrongIdentity); got != 1 {
		t.Errorf("b: wrong_identity answers = %v, want 1 (a answering for c)", got)
	}
	// a and c share the private address: neither is a candidate of the other.
	wantDst(t, a, c, c.lease.Attrs.PublicIP)
	wantDst(t, c, a, a.lease.Attrs.PublicIP)
	// c probes b's 198.51.100.3, which does not exist in VPC 2.
	wantDst(t, c, b, b.lease.Attrs.PublicIP)
	if got := c.metric(t, "probes_sent_total", ""); got != 1 {
		t.Errorf("c: probes sent = %v, want 1 (to b only)", got)
	}
	if got := a.det.Verified(); len(got) != 1 || got[b.lease.Subnet] != b.lease.Attrs.PrivateIP {
		t.Errorf("a: Verified() = %v, want only b", got)
	}
}

func TestVerdictChangeIsReported(t *testing.T) {
	_, a, b, c := labSites(t)
	before := len(a.next.all())
	probe(a, b, c)
	pump(a, b, c)
	got := a.next.all()[before:]
	want := Verdict{Subnet: b.lease.Subnet, Private: b.lease.Attrs.PrivateIP, MAC: [6]byte{2, 0, 0, 0, 0, 2}, Key: [32]byte(b.lease.Attrs.SameSiteKey)}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("a reported %v after verifying b, want exactly %v", got, want)
	}
}

func TestFallbackAfterMissedAnswers(t *testing.T) {
	clock, a, b, _ := probedSites(t)
	b.conn.setDeaf(true)

	// a re-verifies b after Interval; each unanswered probe gets Timeout.
	clock.Advance(DefaultInterval)
	for miss := 1; miss <= DefaultMaxMissed; miss++ {
		probe(a)
		pump(a, b)
		wantDst(t, a, b, b.lease.Attrs.PrivateIP)
		clock.Advance(DefaultTimeout)
	}
	before := len(a.next.all())
	probe(a)
	wantDst(t, a, b, b.lease.Attrs.PublicIP)
	if got := a.next.all()[before:]; len(got) != 1 || got[0].Subnet != b.lease.Subnet || got[0].Private.IsValid() {
		t.Fatalf("after the fallback a reported %v, want b cleared", got)
	}
	if got := a.metric(t, "fallbacks_total", ""); got != 1 {
		t.Errorf("fallbacks = %v, want 1", got)
	}

	// b answers again: verified by the next (backed-off) probe.
	b.conn.setDeaf(false)
	clock.Advance(a.det.o.Interval)
	probe(a)
	pump(a, b)
	wantDst(t, a, b, b.lease.Attrs.PrivateIP)
}

func TestTwoMissesKeepTheVerdict(t *testing.T) {
	clock, a, b, _ := probedSites(t)
	clock.Advance(DefaultInterval)
	b.conn.setDeaf(true)
	probe(a) // probe 1, lost
	clock.Advance(DefaultTimeout)
	probe(a) // miss 1, probe 2, lost
	clock.Advance(DefaultTimeout)
	b.conn.setDeaf(false)
	probe(a) // miss 2, probe 3, answered
	pump(a, b)
	wantDst(t, a, b, b.lease.Attrs.PrivateIP)
	if p := a.det.peers[b.lease.Subnet]; p.missed != 0 || !p.verified || p.outstanding {
		t.Errorf("after the answer: missed %d verified %v outstanding %v, want 0, true, false", p.missed, p.verified, p.outstanding)
	}
	if got := a.metric(t, "fallbacks_total", ""); got != 0 {
		t.Errorf("fallbacks = %v, want 0", got)
	}
}

func TestLeaseChangeClearsTheVerdictAtOnce(t *testing.T) {
	_, a, b, _ := probedSites(t)

	changed := b.lease
	changed.Attrs.BackendData = []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:00:99"}`)
	before := len(a.next.all())
	a.feed.UpdatePeers([]subnet.Event{{Type: subnet.EventAdded, Lease: changed}})
	// The verdict is cleared as the candidate changes.
	wantDst(t, a, &host{name: "b'", lease: changed}, changed.Attrs.PublicIP)
	if got := a.next.all()[before:]; len(got) != 1 || got[0].Subnet != b.lease.Subnet || got[0].Private.IsValid() {
		t.Fatalf("a reported %v, want b cleared", got)
	}
	// b's responder still has the old MAC: its answers no longer verify.
	probe(a)
	pump(a, b)
	wantDst(t, a, &host{name: "b'", lease: changed}, changed.Attrs.PublicIP)
	if got := a.metric(t, "answers_received_total", resultWrongIdentity); got != 1 {
		t.Errorf("wrong_identity answers = %v, want 1", got)
	}
}

func TestRenewalKeepsTheVerdict(t *testing.T) {
	clock, a, b, _ := probedSites(t)
	renewed := b.lease
	renewed.Expiration = renewed.Expiration.Add(time.Hour)
	a.feed.UpdatePeers([]subnet.Event{{Type: subnet.EventAdded, Lease: renewed}})
	wantDst(t, a, b, b.lease.Attrs.PrivateIP)
	if p := a.det.peers[b.lease.Subnet]; !p.due.Equal(clock.Now()) {
		t.Errorf("after a lease change the re-probe is due at %v, want now", p.due)
	}
	b.conn.setDeaf(true)
	for range DefaultMaxMissed + 1 {
		probe(a)
		clock.Advance(DefaultTimeout)
	}
	got := a.next.all()
	if last := got[len(got)-1]; last.Subnet != b.lease.Subnet || last.Private.IsValid() || len(got) != 2 {
		t.Errorf("verdicts %v, want b verified once, then cleared once by the fallback", got)
	}
}

func TestRemovedPeerForgetsItsVerdict(t *testing.T) {
	_, a, b, _ := probedSites(t)
	a.feed.UpdatePeers([]subnet.Event{{Type: subnet.EventRemoved, Lease: b.lease}})
	if len(a.det.Verified()) != 0 || len(a.det.peers) != 0 || len(a.det.byNonce) != 0 {
		t.Errorf("after removal: verified %v, peers %d, nonces %d; want none", a.det.Verified(), len(a.det.peers), len(a.det.byNonce))
	}
	// A snapshot without b does the same.
	feedPeers(a, b)
	probe(a, b)
	pump(a, b)
	a.feed.ReplacePeers(nil)
	if len(a.det.Verified()) != 0 || len(a.det.peers) != 0 {
		t.Errorf("after an empty snapshot: verified %v, peers %d", a.det.Verified(), len(a.det.peers))
	}
}

// TestForgedAnswersAreRejected: a host that receives a's probe for b (a
// stranger at b's private address) knows the nonce, and b's subnet and
// MAC from its lease, but not b's key. Every answer it can make is
// refused and counted, without using the nonce up; b's own answer then
// verifies, once: replaying it finds no probe. On today's main the
// unsigned "lease-correct" answer verified b.
func TestForgedAnswersAreRejected(t *testing.T) {
	_, a, b, _ := labSites(t)
	probe(a)
	var probeMsg message
	for _, d := range a.conn.sent {
		if d.from.Addr() == b.lease.Attrs.PrivateIP {
			probeMsg, _ = parseMessage(d.data)
		}
	}
	bAddr, bMAC := b.lease.Attrs.PrivateIP, [6]byte{2, 0, 0, 0, 0, 2}
	aAddr := a.lease.Attrs.PrivateIP
	genuine := signAnswer(b.key, probeMsg, aAddr, bAddr, b.lease.Subnet, bMAC)
	unsigned := message{kind: kindAnswer, nonce: probeMsg.nonce, subnet: b.lease.Subnet, mac: bMAC, probed: bAddr}
	strangerKey := testKey(99)
	from := netip.AddrPortFrom(bAddr, DefaultPort)
	forgeries := []struct {
		name   string
		from   netip.AddrPort
		msg    message
		result string
	}{
		{"other address", netip.MustParseAddrPort("198.51.100.9:8475"), genuine, resultWrongSource},
		{"other port", netip.MustParseAddrPort("198.51.100.3:9999"), genuine, resultWrongSource},
		{"public address", netip.MustParseAddrPort("203.0.113.12:8475"), genuine, resultWrongSource},
		{"unknown nonce", from, signAnswer(b.key, message{nonce: nonce{7}}, aAddr, bAddr, b.lease.Subnet, bMAC), resultUnknownNonce},
		{"unsigned, lease-correct", from, unsigned, resultBadSignature},
		{"signed by the stranger's key", from, signAnswer(strangerKey, probeMsg, aAddr, bAddr, b.lease.Subnet, bMAC), resultBadSignature},
		{"b's signature for another prober", from, signAnswer(b.key, probeMsg, netip.MustParseAddr("198.51.100.9"), bAddr, b.lease.Subnet, bMAC), resultBadSignature},
		{"b's signature for another address probed", from, signAnswer(b.key, probeMsg, aAddr, netip.MustParseAddr("198.51.100.9"), b.lease.Subnet, bMAC), resultBadSignature},
		{"signature of another nonce", from, func() message {
			m := signAnswer(b.key, message{nonce: nonce{7}}, aAddr, bAddr, b.lease.Subnet, bMAC)
			m.nonce = probeMsg.nonce
			return m
		}(), resultBadSignature},
	}
	for _, f := range forgeries {
		t.Run(f.name, func(t *testing.T) {
			before := a.metric(t, "answers_received_total", f.result)
			a.det.handlePacket(f.from, f.msg.marshal())
			wantDst(t, a, b, b.lease.Attrs.PublicIP)
			if got := a.metric(t, "answers_received_total", f.result); got != before+1 {
				t.Errorf("%s answers = %v, want %v", f.result, got, before+1)
			}
		})
	}
	// The genuine answer still verifies: forgeries did not use the nonce up.
	a.det.handlePacket(from, genuine.marshal())
	wantDst(t, a, b, b.lease.Attrs.PrivateIP)
	// Replaying it after it was accepted does nothing but count.
	before := a.metric(t, "answers_received_total", resultUnknownNonce)
	a.det.handlePacket(from, genuine.marshal())
	if got := a.metric(t, "answers_received_total", resultUnknownNonce); got != before+1 {
		t.Errorf("unknown_nonce answers after a replay = %v, want %v", got, before+1)
	}
	if got := a.metric(t, "answers_received_total", resultAccepted); got != 1 {
		t.Errorf("accepted answers = %v, want 1", got)
	}
}

// TestLeaseWithoutKeyGetsNoSameSitePath: a same-site peer whose lease has
// no OverlaydKey (an older overlayd) is never probed, so its VXLAN keeps
// going to its public address.
func TestLeaseWithoutKeyGetsNoSameSitePath(t *testing.T) {
	_, a, b, c := labSites(t)
	old := b.lease
	old.Attrs.SameSiteKey = nil
	a.feed.ReplacePeers([]subnet.Lease{old, c.lease})
	probe(a, b, c)
	pump(a, b, c)
	wantDst(t, a, b, b.lease.Attrs.PublicIP)
	if got := a.metric(t, "candidate_peers", ""); got != 0 {
		t.Errorf("candidates %v, want 0", got)
	}
}

func TestResponderAnswersOnlyItsUnderlaySubnet(t *testing.T) {
	_, a, _, _ := labSites(t)
	probeMsg := message{kind: kindProbe, nonce: nonce{1, 2, 3}}
	cases := []struct {
		from     string
		answered bool
	}{
		{"198.51.100.3:40000", true},
		{"198.51.100.200:8475", true},
		{"203.0.113.12:8475", false}, // through the NAT from another site
		{"192.0.2.1:8475", false},
	}
	for _, c := range cases {
		t.Run(c.from, func(t *testing.T) {
			before := a.conn.sentCount()
			a.det.handlePacket(netip.MustParseAddrPort(c.from), probeMsg.marshal())
			sent := a.conn.sent[before:]
			if !c.answered {
				if len(sent) != 0 {
					t.Fatalf("answered %v", sent)
				}
				return
			}
			if len(sent) != 1 || sent[0].from.String() != c.from {
				t.Fatalf("sent %v, want one answer to %s", sent, c.from)
			}
			m, err := parseMessage(sent[0].data)
			if err != nil || m.kind != kindAnswer || m.nonce != probeMsg.nonce || m.subnet != a.lease.Subnet || macString(m.mac) != "02:00:00:00:00:01" {
				t.Fatalf("answer %+v (%v), want the nonce, %s and a's MAC", m, err, a.lease.Subnet)
			}
			if len(sent[0].data) != len(probeMsg.marshal()) {
				t.Errorf("answer is %d bytes, probe %d: amplification", len(sent[0].data), len(probeMsg.marshal()))
			}
		})
	}
	if got := a.metric(t, "probes_refused_total", ""); got != 2 {
		t.Errorf("refused probes = %v, want 2", got)
	}
}

func TestCandidateRules(t *testing.T) {
	clock := subnettest.NewClock(testStart)
	a := newHost(t, newFakeNet(), clock, "a", 2, 1)
	base, _ := candidateOf(testLease(2, netip.MustParseAddr("198.51.100.3"), net.HardwareAddr{2, 0, 0, 0, 0, 2}))
	cases := []struct {
		name   string
		edit   func(c *Candidate)
		reason string // "" = candidate
	}{
		{"same subnet, other address", func(c *Candidate) {}, ""},
		{"no private address", func(c *Candidate) { c.Private = netip.Addr{} }, "no OverlaydPrivateIP"},
		{"our own bind address", func(c *Candidate) { c.Private = netip.MustParseAddr("198.51.100.2") }, "our own bind address"},
		{"outside our underlay", func(c *Candidate) { c.Private = netip.MustParseAddr("198.51.101.3") }, "outside our underlay"},
		{"private is public", func(c *Candidate) { c.PublicIP = c.Private }, "is the PublicIP"},
		{"our own subnet", func(c *Candidate) { c.Subnet = a.lease.Subnet }, "own subnet"},
		{"no key (older overlayd)", func(c *Candidate) { c.Key = [32]byte{} }, "no OverlaydKey"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := base
			c.edit(&l)
			p, err := a.det.candidate(l)
			switch {
			case c.reason == "" && err != nil:
				t.Fatalf("not a candidate: %v", err)
			case c.reason == "" && (p.private != l.Private || macString(p.mac) != "02:00:00:00:00:02"):
				t.Fatalf("candidate %+v", p)
			case c.reason != "" && (err == nil || !strings.Contains(err.Error(), c.reason)):
				t.Fatalf("err = %v, want one saying %q", err, c.reason)
			}
		})
	}
}

func TestCandidateBackoff(t *testing.T) {
	clock := subnettest.NewClock(testStart)
	a := newHost(t, newFakeNet(), clock, "a", 2, 1)
	// b's private address exists nowhere: probes are never answered.
	peer := testLease(2, netip.MustParseAddr("198.51.100.3"), net.HardwareAddr{2, 0, 0, 0, 0, 2})
	a.feed.ReplacePeers([]subnet.Lease{peer})
	var gaps []time.Duration
	last := clock.Now()
	for range 8 {
		probe(a)
		p := a.det.peers[peer.Subnet]
		gaps = append(gaps, p.due.Sub(last))
		last = p.due
		clock.Advance(p.due.Sub(clock.Now()))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		if gaps[i] != want[i]*time.Second {
			t.Fatalf("probe gaps %v, want %v seconds", gaps, want)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	conn := newFakeNet().listen(netip.MustParseAddrPort("198.51.100.2:8475"))
	good := Options{Conn: conn, Local: underlay, Self: Identity{Subnet: netip.MustParsePrefix("10.244.1.0/24"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Key: testKey(1)}}
	cases := []struct {
		name string
		edit func(o *Options)
		want string
	}{
		{"no conn", func(o *Options) { o.Conn = nil }, "Conn is nil"},
		{"no local", func(o *Options) { o.Local = netip.Prefix{} }, "Local"},
		{"ipv6 local", func(o *Options) { o.Local = netip.MustParsePrefix("2001:db8::1/64") }, "Local 2001:db8::1/64"},
		{"unmasked subnet", func(o *Options) { o.Self.Subnet = netip.MustParsePrefix("10.244.1.1/24") }, "Self.Subnet 10.244.1.1/24"},
		{"short mac", func(o *Options) { o.Self.MAC = net.HardwareAddr{1, 2} }, "Self.MAC"},
		{"no key", func(o *Options) { o.Self.Key = nil }, "Self.Key has 0 bytes"},
		{"interval under timeout", func(o *Options) { o.Interval, o.Timeout = time.Second, 2*time.Second }, "Interval 1s is shorter than Timeout 2s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := good
			c.edit(&o)
			if _, err := New(o); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, want an error with %q", err, c.want)
			}
		})
	}
	d, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if d.o.Port != DefaultPort || d.o.Interval != DefaultInterval || d.o.Timeout != DefaultTimeout || d.o.MaxMissed != DefaultMaxMissed {
		t.Errorf("defaults: %+v", d.o)
	}
}

// One rule for every consumer: a lease that turned unreadable keeps the
// last good state of its subnet, here the candidate and its verdict, in
// an event and in a snapshot alike.
func TestUnreadableLeaseKeepsTheVerdict(t *testing.T) {
	_, a, b, c := probedSites(t)
	unreadable := subnet.Lease{Subnet: b.lease.Subnet, Unreadable: true}
	a.feed.UpdatePeers([]subnet.Event{{Type: subnet.EventAdded, Lease: unreadable}})
	if got := a.det.Verified(); got[b.lease.Subnet] != b.lease.Attrs.PrivateIP {
		t.Fatalf("after an unreadable event: verified %v, want b kept", got)
	}
	a.feed.ReplacePeers([]subnet.Lease{unreadable, c.lease})
	if got := a.det.Verified(); got[b.lease.Subnet] != b.lease.Attrs.PrivateIP || len(a.det.peers) != 1 {
		t.Fatalf("after a snapshot with b unreadable: verified %v, %d candidates; want b kept", got, len(a.det.peers))
	}
	wantDst(t, a, b, b.lease.Attrs.PrivateIP)
}
