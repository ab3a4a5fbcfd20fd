package samesite

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
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
