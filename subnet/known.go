package subnet

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"net/netip"
)

// knownLease is what the lease watch keeps of a peer lease the sink has
// been sent: enough to tell a changed value from a re-put (a fingerprint
// of the attributes), and to send the peer's removal with its last
// addresses and backend data, as PeerSink promises. The sink (the peer
// set) keeps the decoded lease; a whole Lease here was a second copy,
// about 430 bytes per peer (43 MB at 100,000 peers).
type knownLease struct {
	sum                        uint64
	publicIP, publicIPv6       netip.Addr
	backendData, backendV6Data []byte // the lease's own, not copied
	vxlan                      bool   // BackendType is "vxlan"
	unreadable                 bool
}

// knownLeases is the watch's set of known peers, keyed by lease key.
type knownLeases struct {
	seed maphash.Seed
	m    map[LeaseID]knownLease
	buf  bytes.Buffer // fingerprint's scratch for compacted JSON
}

func newKnownLeases(seed maphash.Seed, n int) *knownLeases {
	return &knownLeases{seed: seed, m: make(map[LeaseID]knownLease, n)}
}

// record is l as the watch keeps it.
func (k *knownLeases) record(l *Lease) knownLease {
	return knownLease{sum: k.fingerprint(&l.Attrs), publicIP: l.Attrs.PublicIP, publicIPv6: l.Attrs.PublicIPv6,
		backendData: l.Attrs.BackendData, backendV6Data: l.Attrs.BackendV6Data,
		vxlan: l.Attrs.BackendType == BackendVXLAN, unreadable: l.Unreadable}
}

// fingerprint hashes the attributes AttrsEqual compares, the JSON values
// compacted: equal attributes give equal sums. A re-put of the same JSON
// with its keys in another order gives another sum, and so one more
// (harmless) change for the sink, where AttrsEqual would see none.
func (k *knownLeases) fingerprint(a *LeaseAttrs) uint64 {
	var h maphash.Hash
	h.SetSeed(k.seed)
	for _, ip := range [...]netip.Addr{a.PublicIP, a.PublicIPv6, a.PrivateIP} {
		b := ip.As16()
		_ = h.WriteByte(byte(ip.BitLen())) // 0 for an unset address
		_, _ = h.Write(b[:])
	}
	writeField(&h, a.BackendType)
	writeField(&h, a.NodeID)
	writeField(&h, string(a.SameSiteKey))
	k.writeJSON(&h, a.BackendData)
	k.writeJSON(&h, a.BackendV6Data)
	return h.Sum64()
}

// writeJSON writes raw compacted (as it is when it does not compact).
func (k *knownLeases) writeJSON(h *maphash.Hash, raw []byte) {
	k.buf.Reset()
	if len(raw) > 0 && json.Compact(&k.buf, raw) == nil {
		raw = k.buf.Bytes()
	}
	writeField(h, string(raw))
}

// writeField writes s with its length, so that fields cannot run together.
func writeField(h *maphash.Hash, s string) {
	var n [binary.MaxVarintLen64]byte
	_, _ = h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
	_, _ = h.WriteString(s)
}

// removal is the removal event of a known peer: its key, addresses,
// backend and backend data (the identity, private address and key are
// not kept).
func (r knownLease) removal(id LeaseID) Event {
	l := Lease{Subnet: id.Subnet, IPv6Subnet: id.IPv6Subnet, Unreadable: r.unreadable}
	l.Attrs = LeaseAttrs{PublicIP: r.publicIP, PublicIPv6: r.publicIPv6,
		BackendData: r.backendData, BackendV6Data: r.backendV6Data}
	if r.vxlan {
		l.Attrs.BackendType = BackendVXLAN
	}
	return Event{Type: EventRemoved, Lease: l}
}

// sameAs: l's attributes are the ones recorded.
func (k *knownLeases) sameAs(r knownLease, l *Lease) bool {
	return r.unreadable == l.Unreadable && r.sum == k.fingerprint(&l.Attrs)
}
