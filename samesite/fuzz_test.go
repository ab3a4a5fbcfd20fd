package samesite

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

// FuzzParseMessage: datagrams on the same-site port come from anyone on the
// underlay. Parsing never panics; what parses re-encodes to the same bytes
// (up to the unused bytes of a probe), and every rejection wraps errMalformed.
func FuzzParseMessage(f *testing.F) {
	answer := message{kind: kindAnswer, subnet: netip.MustParsePrefix("10.244.3.0/24"), mac: [6]byte{2, 0, 0, 0, 0, 1},
		probed: netip.MustParseAddr("198.51.100.3"), sig: [sigLen]byte{0xff, 63: 0x01}}
	f.Add(answer.marshal())
	f.Add(message{kind: kindProbe}.marshal())
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, messageLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		again, err := parseMessage(m.marshal())
		if err != nil || again != m {
			t.Fatalf("round trip: %+v -> %+v, %v", m, again, err)
		}
		if m.kind == kindAnswer && !bytes.Equal(m.marshal(), b) {
			t.Fatalf("answer %x re-encodes as %x", b, m.marshal())
		}
	})
}

// FuzzCheckAnswer: a datagram from a candidate's own address and port,
// whatever its bytes, verifies the candidate only when it is the answer
// the candidate's key signs for the outstanding probe (ed25519 signatures
// are deterministic, so that answer is one byte string); anything else
// leaves the candidate unverified and its nonce outstanding.
func FuzzCheckAnswer(f *testing.F) {
	clock := subnettest.NewClock(testStart)
	vpc := newFakeNet()
	a := newHost(&testing.T{}, vpc, clock, "a", 2, 1)
	b := newHost(&testing.T{}, vpc, clock, "b", 3, 2)
	b.conn.setDeaf(true) // a's probes go unanswered: the fuzzer answers
	a.feed.ReplacePeers([]subnet.Lease{b.lease})
	probe(a)
	p := a.det.peers[b.lease.Subnet]
	genuine := signAnswer(b.key, message{nonce: p.nonce}, a.lease.Attrs.PrivateIP, b.lease.Attrs.PrivateIP, b.lease.Subnet, p.mac).marshal()
	f.Add(genuine)
	f.Add(message{kind: kindAnswer, nonce: p.nonce, subnet: b.lease.Subnet, mac: p.mac, probed: b.lease.Attrs.PrivateIP}.marshal())
	f.Add(message{kind: kindProbe, nonce: p.nonce}.marshal())
	from := netip.AddrPortFrom(b.lease.Attrs.PrivateIP, DefaultPort)
	f.Fuzz(func(t *testing.T, data []byte) {
		d := a.det
		d.mu.Lock()
		p.verified, p.outstanding = false, true
		d.byNonce[p.nonce] = b.lease.Subnet
		d.storeVerdict(b.lease.Subnet, netip.Addr{})
		d.mu.Unlock()
		d.handlePacket(from, data)
		verified := dst(a, b.lease) == b.lease.Attrs.PrivateIP
		if verified != bytes.Equal(data, genuine) {
			t.Fatalf("answer %x: verified %v, genuine %v", data, verified, bytes.Equal(data, genuine))
		}
	})
}
