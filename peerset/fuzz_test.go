package peerset

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/overlayd/overlayd/subnet"
)

// FuzzLeasePolicy: peer leases are written by other machines. Whatever two
// of them say, next to one good peer, feeding them (in a snapshot, then
// as events, then removing one) never panics, never touches the good
// peer, and every peer the reconciler is given is inside the network,
// SubnetLen long, clear of our subnet and of every other peer, with a
// usable destination that is not ours.
func FuzzLeasePolicy(f *testing.F) {
	f.Add([]byte{10, 244, 99, 0}, uint8(25), []byte{192, 0, 2, 9}, []byte{}, int64(1),
		[]byte{10, 244, 5, 0}, uint8(24), []byte{127, 0, 0, 1}, []byte{198, 51, 100, 3}, int64(2), `{"VtepMAC":"02:00:00:00:00:09"}`)
	f.Add([]byte{10, 244, 8, 0}, uint8(24), []byte{192, 0, 2, 8}, []byte{224, 0, 0, 1}, int64(5),
		[]byte{10, 244, 8, 128}, uint8(25), []byte{203, 0, 113, 99}, []byte{}, int64(3), `{"VNI":1,"VtepMAC":"zz"}`)
	f.Add([]byte{10, 244, 0, 0}, uint8(16), []byte{255, 255, 255, 255}, []byte{0, 0, 0, 0}, int64(0),
		[]byte{10, 9, 0, 0}, uint8(24), []byte{198, 51, 100, 99}, []byte{169, 254, 0, 1}, int64(0), `null`)
	f.Fuzz(func(t *testing.T, s1 []byte, b1 uint8, p1, q1 []byte, c1 int64, s2 []byte, b2 uint8, p2, q2 []byte, c2 int64, data string) {
		a := fuzzLease(s1, b1, p1, q1, c1, `{"VNI":1,"VtepMAC":"02:00:00:00:00:0a"}`)
		b := fuzzLease(s2, b2, p2, q2, c2, data)
		if !a.Subnet.IsValid() || !b.Subnet.IsValid() {
			return
		}
		good := lease(1, "")
		fx := policyFixture(t)
		fx.replace(good, a, b)
		checkPolicy(t, fx, good)
		fx.update(added(b), added(a))
		checkPolicy(t, fx, good)
		fx.update(removed(a))
		checkPolicy(t, fx, good)
	})
}

func fuzzLease(sub []byte, bits uint8, public, private []byte, created int64, data string) subnet.Lease {
	var l subnet.Lease
	if a, ok := netip.AddrFromSlice(sub); ok {
		if p, err := a.Prefix(int(bits % 33)); err == nil {
			l.Subnet = p
		}
	}
	l.Attrs.PublicIP, _ = netip.AddrFromSlice(public)
	l.Attrs.PrivateIP, _ = netip.AddrFromSlice(private)
	l.Attrs.BackendType = subnet.BackendVXLAN
	l.Attrs.BackendData = json.RawMessage(data)
	l.Created = created
	return l
}

func checkPolicy(t *testing.T, f *fixture, good subnet.Lease) {
	t.Helper()
	cur := f.rec.current()
	if p := cur[good.Subnet]; p.Keep != "" || p.Dst != good.Attrs.PublicIP {
		t.Fatalf("the good peer was touched: %+v", p)
	}
	var placed []netip.Prefix
	for sub, p := range cur {
		if p.Keep != "" {
			continue
		}
		switch {
		case !testNetwork.Contains(sub.Addr()) || sub.Bits() != 24:
			t.Fatalf("peer %s outside the network or not /24", sub)
		case sub.Overlaps(ownSubnet):
			t.Fatalf("peer %s overlaps our subnet", sub)
		case !usableUnicast(p.Dst) || p.Dst == bindAddr || p.Dst == publicAddr:
			t.Fatalf("peer %s has destination %s", sub, p.Dst)
		}
		for _, q := range placed {
			if q.Overlaps(sub) {
				t.Fatalf("peers %s and %s overlap", q, sub)
			}
		}
		placed = append(placed, sub)
	}
}
