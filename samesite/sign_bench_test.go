package samesite

import (
	"crypto/ed25519"
	"net/netip"
	"testing"
)

// BenchmarkSignAnswer and BenchmarkVerifyAnswer: the cost a responder pays
// per probe answered and a prober per answer checked (go test -bench
// Answer ./samesite).
func BenchmarkSignAnswer(b *testing.B) {
	key := testKey(1)
	probe := message{kind: kindProbe, nonce: nonce{1}}
	prober, probed := netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")
	sub := netip.MustParsePrefix("10.244.2.0/24")
	for b.Loop() {
		signAnswer(key, probe, prober, probed, sub, [6]byte{2})
	}
}

func BenchmarkVerifyAnswer(b *testing.B) {
	key := testKey(1)
	probe := message{kind: kindProbe, nonce: nonce{1}}
	prober, probed := netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3")
	sub := netip.MustParsePrefix("10.244.2.0/24")
	a := signAnswer(key, probe, prober, probed, sub, [6]byte{2})
	pub := key.Public().(ed25519.PublicKey)
	for b.Loop() {
		if !verifyAnswer(pub, a, probe.nonce, prober, probed, sub, [6]byte{2}) {
			b.Fatal("does not verify")
		}
	}
}
