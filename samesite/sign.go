package samesite

import (
	"crypto/ed25519"
	"net/netip"
)

// signDomain separates same-site answer signatures from any other use of
// the key.
const signDomain = "overlayd same-site answer v2\x00"

// signedAnswer is what an answer's signature covers: the prober's nonce,
// the prober's address (who asked), the probed address (where the probe
// went), and the responder's lease subnet and VTEP MAC. The prober
// rebuilds it from its own record (its nonce and address, the address it
// probed, the candidate lease) and never from the answer, so a valid
// signature says: the holder of the lease's key is at the address probed,
// answering this probe of this prober, now.
func signedAnswer(n nonce, prober, probed netip.Addr, subnet netip.Prefix, mac [6]byte) []byte {
	b := make([]byte, 0, len(signDomain)+nonceLen+4+4+4+1+6)
	b = append(b, signDomain...)
	b = append(b, n[:]...)
	p4, q4, s4 := prober.Unmap().As4(), probed.Unmap().As4(), subnet.Addr().As4()
	b = append(b, p4[:]...)
	b = append(b, q4[:]...)
	b = append(b, s4[:]...)
	b = append(b, byte(subnet.Bits()))
	return append(b, mac[:]...)
}

// signAnswer makes the answer to probe, from prober, for a responder at
// probed with the given identity and key.
func signAnswer(key ed25519.PrivateKey, probe message, prober, probed netip.Addr, subnet netip.Prefix, mac [6]byte) message {
	a := message{kind: kindAnswer, nonce: probe.nonce, subnet: subnet, mac: mac, probed: probed}
	copy(a.sig[:], ed25519.Sign(key, signedAnswer(probe.nonce, prober, probed, subnet, mac)))
	return a
}

// verifyAnswer checks a's signature with pub over what the prober expects:
// its nonce n, its own address prober, the address it probed, and the
// candidate lease's subnet and MAC. A key of the wrong length verifies
// nothing.
func verifyAnswer(pub ed25519.PublicKey, a message, n nonce, prober, probed netip.Addr, subnet netip.Prefix, mac [6]byte) bool {
	if len(pub) != ed25519.PublicKeySize || a.probed != probed.Unmap() {
		return false
	}
	return ed25519.Verify(pub, signedAnswer(n, prober, probed, subnet, mac), a.sig[:])
}
