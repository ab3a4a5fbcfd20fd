package peerset

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/subnet"
)

func TestDecode(t *testing.T) {
	r := rules{network: testNetwork, ownSubnet: ownSubnet}
	base := lease(37, "")
	with := func(edit func(*subnet.Lease)) subnet.Lease { l := base; edit(&l); return l }
	tests := []struct {
		name    string
		lease   subnet.Lease
		ignored bool
		err     string // substring; "" = usable
	}{
		{"valid", base, false, ""},
		{"other backend", with(func(l *subnet.Lease) { l.Attrs.BackendType = "udp" }), true, "BackendType"},
		{"own subnet", with(func(l *subnet.Lease) { l.Subnet = ownSubnet }), true, "own subnet"},
		{"outside network", with(func(l *subnet.Lease) { l.Subnet = netip.MustParsePrefix("10.9.0.0/24") }), false, "not inside the network"},
		{"the network itself", with(func(l *subnet.Lease) { l.Subnet = testNetwork }), false, "not inside the network"},
		{"unmasked subnet", with(func(l *subnet.Lease) { l.Subnet = netip.MustParsePrefix("10.244.37.1/24") }), false, "masked"},
		{"missing BackendData", with(func(l *subnet.Lease) { l.Attrs.BackendData = nil }), false, "BackendData"},
		{"bad MAC", with(func(l *subnet.Lease) { l.Attrs.BackendData = []byte(`{"VtepMAC":"56:b3:03"}`) }), false, "VtepMAC"},
		{"no PublicIP", with(func(l *subnet.Lease) { l.Attrs.PublicIP = netip.Addr{} }), false, "underlay address"},
		{"unreadable", unreadable(base), false, "cannot be decoded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := r.decode(tt.lease)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("err %v, want mention of %q", err, tt.err)
			case err != nil && errors.Is(err, errIgnored) != tt.ignored:
				t.Fatalf("ignored = %v, want %v", !tt.ignored, tt.ignored)
			case err == nil && (d.mac != mac(37) || d.publicIP.String() != "203.0.113.37"):
				t.Fatalf("decoded %+v", d)
			}
		})
	}
}

// One rule for every consumer: a lease that cannot be used keeps its
// subnet's last good state (destination, candidate, filter addresses); the
// reconciler is told to keep the subnet as it is.
func TestUnusableLeaseKeepsLastGoodState(t *testing.T) {
	good := lease(1, "198.51.100.1")
	tests := []struct {
		name     string
		bad      subnet.Lease
		snapshot bool
	}{
		{"unreadable event", unreadable(good), false},
		{"unreadable in a snapshot", unreadable(good), true},
		{"malformed event", malformed(good), false},
		{"malformed in a snapshot", malformed(good), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.replace(good, lease(2, ""))
			f.verdict(Verdict{Subnet: good.Subnet, Private: good.Attrs.PrivateIP, MAC: mac(1)})
			addrsBefore := f.rec.lastAddrs()
			candBefore := len(f.rec.candSet) + len(f.rec.candDrop)
			var got Peer
			if tt.snapshot {
				f.replace(tt.bad, lease(2, ""))
				for _, p := range f.rec.replaces[len(f.rec.replaces)-1] {
					if p.Subnet == good.Subnet {
						got = p
					}
				}
				if c := f.rec.candRepl[len(f.rec.candRepl)-1]; len(c) != 1 || c[0].Subnet != good.Subnet {
					t.Errorf("candidates after the snapshot %v, want the good one kept", c)
				}
			} else {
				f.update(added(tt.bad))
				ch := f.rec.lastChanges()
				if len(ch) != 1 || ch[0].Removed {
					t.Fatalf("changes %+v, want one keep", ch)
				}
				got = ch[0].Peer
				if n := len(f.rec.candSet) + len(f.rec.candDrop); n != candBefore {
					t.Errorf("candidates changed by an unusable lease")
				}
			}
			if got.Keep == "" || got.Dst.IsValid() {
				t.Errorf("reconciler got %+v, want the subnet kept as it is", got)
			}
			if a := f.rec.lastAddrs(); !slices.Equal(a, addrsBefore) {
				t.Errorf("filter addresses %v, want the last good %v", a, addrsBefore)
			}
			// Usable again: the verdict still holds, destination private.
			f.update(added(good))
			if ch := f.rec.lastChanges(); len(ch) != 1 || ch[0].Peer.Dst != good.Attrs.PrivateIP {
				t.Errorf("after the lease is usable again: %+v, want dst %s", ch, good.Attrs.PrivateIP)
			}
			// The key goes: the subnet goes.
			f.update(removed(tt.bad))
			if ch := f.rec.lastChanges(); len(ch) != 1 || !ch[0].Removed {
				t.Errorf("after removal: %+v", ch)
			}
			if a := f.rec.lastAddrs(); slices.Contains(a, "203.0.113.1") {
				t.Errorf("filter still admits a removed peer: %v", a)
			}
		})
	}
}

func TestUnusableLeaseNeverGoodIsKept(t *testing.T) {
	f := newFixture(t)
	f.replace(unreadable(lease(1, "")), malformed(lease(2, "")))
	peers := f.rec.replaces[0]
	if len(peers) != 2 || peers[0].Keep == "" || peers[1].Keep == "" {
		t.Fatalf("snapshot %+v, want two subnets to keep", peers)
	}
	if len(f.rec.candRepl[0]) != 0 || len(f.rec.lastAddrs()) != 0 {
		t.Fatalf("candidates %v, addresses %v from leases never usable", f.rec.candRepl[0], f.rec.lastAddrs())
	}
	if n := len(f.lines("WARN", "skipping malformed peer lease")); n != 1 {
		t.Errorf("%d warnings, want 1 (the malformed lease; the unreadable was warned by the lease manager)", n)
	}
	f.update(added(malformed(lease(2, ""))))
	if n := len(f.lines("WARN", "skipping malformed peer lease")); n != 1 {
		t.Errorf("%d warnings after the same malformed lease again, want 1", n)
	}
}

// A verdict re-derives the destination of exactly its peer, once, with no
// lease event; a verdict for another identity changes nothing.
func TestVerdictRederivesTheDestination(t *testing.T) {
	a, b := lease(1, "198.51.100.1"), lease(2, "198.51.100.2")
	tests := []struct {
		name    string
		verdict Verdict
		wantDst string // "" = no change sent
	}{
		{"verified", Verdict{Subnet: a.Subnet, Private: a.Attrs.PrivateIP, MAC: mac(1)}, "198.51.100.1"},
		{"other MAC", Verdict{Subnet: a.Subnet, Private: a.Attrs.PrivateIP, MAC: mac(9)}, ""},
		{"other private address", Verdict{Subnet: a.Subnet, Private: b.Attrs.PrivateIP, MAC: mac(1)}, ""},
		{"unknown subnet", Verdict{Subnet: netip.MustParsePrefix("10.244.7.0/24"), Private: a.Attrs.PrivateIP, MAC: mac(1)}, ""},
		{"cleared while unverified", Verdict{Subnet: a.Subnet}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.replace(a, b)
			updates := len(f.rec.updates)
			f.verdict(tt.verdict)
			switch got := f.rec.updates[updates:]; {
			case tt.wantDst == "" && len(got) != 0:
				t.Fatalf("sent %+v, want nothing", got)
			case tt.wantDst != "" && (len(got) != 1 || len(got[0]) != 1 || got[0][0].Peer.Dst.String() != tt.wantDst ||
				got[0][0].Peer.Subnet != a.Subnet || got[0][0].Peer.MAC != mac(1)):
				t.Fatalf("sent %+v, want one change of a to %s", got, tt.wantDst)
			}
		})
	}
}

func TestVerdictLifecycle(t *testing.T) {
	a := lease(1, "198.51.100.1")
	f := newFixture(t)
	f.replace(a)
	f.verdict(Verdict{Subnet: a.Subnet, Private: a.Attrs.PrivateIP, MAC: mac(1)})
	// A renewal keeps the verdict.
	f.update(added(a))
	if ch := f.rec.lastChanges(); ch[0].Peer.Dst != a.Attrs.PrivateIP {
		t.Fatalf("renewal: %+v", ch)
	}
	// Cleared: back to the PublicIP.
	f.verdict(Verdict{Subnet: a.Subnet})
	if ch := f.rec.lastChanges(); ch[0].Peer.Dst != a.Attrs.PublicIP {
		t.Fatalf("cleared: %+v", ch)
	}
	// Verified again, then the lease names a new MAC: the verdict is dropped
	// at once, and a late verdict for the old MAC is ignored.
	f.verdict(Verdict{Subnet: a.Subnet, Private: a.Attrs.PrivateIP, MAC: mac(1)})
	changed := a
	changed.Attrs.BackendData = []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:00:99"}`)
	f.update(added(changed))
	if ch := f.rec.lastChanges(); ch[0].Peer.Dst != a.Attrs.PublicIP {
		t.Fatalf("new MAC: %+v, want the PublicIP", ch)
	}
	n := len(f.rec.updates)
	f.verdict(Verdict{Subnet: a.Subnet, Private: a.Attrs.PrivateIP, MAC: mac(1)})
	if len(f.rec.updates) != n {
		t.Fatalf("a stale verdict changed the peer: %+v", f.rec.lastChanges())
	}
	// Removed and back: no verdict survives.
	f.update(removed(changed))
	f.update(added(changed))
	if ch := f.rec.lastChanges(); ch[0].Peer.Dst != a.Attrs.PublicIP {
		t.Fatalf("re-added: %+v", ch)
	}
}

// One log line per change, with the texts the operators know; an
// aggregate line above eight.
func TestOneLogLinePerChange(t *testing.T) {
	a := lease(1, "198.51.100.1")
	newMAC := a
	newMAC.Attrs.BackendData = []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:00:99"}`)
	newPublic := a
	newPublic.Attrs.PublicIP = netip.MustParseAddr("203.0.113.201")
	tests := []struct {
		name string
		do   func(f *fixture)
		want []string // message of each INFO line, in order
	}{
		{"added", func(f *fixture) { f.update(added(lease(2, ""))) }, []string{`msg="peer added" lease=10.244.2.0-24 public_ip=203.0.113.2 vtep_mac=02:00:00:00:00:02 dst=203.0.113.2`}},
		{"removed", func(f *fixture) { f.update(removed(a)) }, []string{`msg="peer removed" lease=10.244.1.0-24`}},
		{"new MAC", func(f *fixture) { f.update(added(newMAC)) }, []string{`msg="peer changed" lease=10.244.1.0-24 public_ip=203.0.113.1 vtep_mac=02:00:00:00:00:99`}},
		{"new PublicIP only", func(f *fixture) { f.update(added(newPublic)) }, []string{`msg="peer changed" lease=10.244.1.0-24 public_ip=203.0.113.201`}},
		{"renewal", func(f *fixture) { f.update(added(a)) }, nil},
		{"verdict", func(f *fixture) { f.verdict(Verdict{Subnet: a.Subnet, Private: a.Attrs.PrivateIP, MAC: mac(1)}) },
			[]string{`msg="peer changed" lease=10.244.1.0-24 public_ip=203.0.113.1 vtep_mac=02:00:00:00:00:01 dst=198.51.100.1`}},
		{"unreadable", func(f *fixture) { f.update(added(unreadable(a))) }, nil},
		{"not vxlan any more", func(f *fixture) {
			l := a
			l.Attrs.BackendType = "host-gw"
			f.update(added(l))
		}, []string{`msg="peer removed" lease=10.244.1.0-24`}},
		{"many", func(f *fixture) {
			var evs []subnet.Event
			for k := 10; k < 20; k++ {
				evs = append(evs, added(lease(k, "")))
			}
			f.update(evs...)
		}, []string{`msg="peers changed" added=10 changed=0 removed=0`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.replace(a)
			f.log.Reset()
			tt.do(f)
			got := f.lines("INFO", "msg=")
			if len(got) != len(tt.want) {
				t.Fatalf("log lines %q, want %d", got, len(tt.want))
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("line %q, want it to contain %q", got[i], tt.want[i])
				}
			}
		})
	}
}

// The filter admits a peer's PublicIP always, its private address only
// while it is verified same-site.
func TestFilterAddrs(t *testing.T) {
	a := lease(1, "198.51.100.1")
	b := lease(2, "")
	udp := lease(3, "")
	udp.Attrs.BackendType = "udp"
	verifyA := Verdict{Subnet: a.Subnet, Private: a.Attrs.PrivateIP, MAC: mac(1)}
	tests := []struct {
		name     string
		verdicts []Verdict
		events   []subnet.Event
		want     []string
	}{
		{"snapshot only", nil, nil, []string{"203.0.113.1", "203.0.113.2"}},
		{"verified private address", []Verdict{verifyA}, nil, []string{"198.51.100.1", "203.0.113.1", "203.0.113.2"}},
		{"verdict cleared", []Verdict{verifyA, {Subnet: a.Subnet}}, nil, []string{"203.0.113.1", "203.0.113.2"}},
		{"verdict for another MAC", []Verdict{{Subnet: a.Subnet, Private: a.Attrs.PrivateIP, MAC: mac(7)}}, nil, []string{"203.0.113.1", "203.0.113.2"}},
		{"peer removed", nil, []subnet.Event{removed(b)}, []string{"203.0.113.1"}},
		{"verified peer removed", []Verdict{verifyA}, []subnet.Event{removed(a)}, []string{"203.0.113.2"}},
		{"unreadable keeps the last good addresses", []Verdict{verifyA}, []subnet.Event{added(unreadable(a))}, []string{"198.51.100.1", "203.0.113.1", "203.0.113.2"}},
		{"new peer", nil, []subnet.Event{added(lease(4, ""))}, []string{"203.0.113.1", "203.0.113.2", "203.0.113.4"}},
		{"shared address stays while one holds it", nil, []subnet.Event{added(func() subnet.Lease {
			l := lease(5, "")
			l.Attrs.PublicIP = b.Attrs.PublicIP
			return l
		}()), removed(b)}, []string{"203.0.113.1", "203.0.113.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.replace(a, b, udp)
			for _, v := range tt.verdicts {
				f.verdict(v)
			}
			f.update(tt.events...)
			if got := f.rec.lastAddrs(); !slices.Equal(got, tt.want) {
				t.Fatalf("addresses %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFilterAddrsSentOnlyWhenChanged(t *testing.T) {
	f := newFixture(t)
	a := lease(1, "")
	f.replace(a)
	n := f.rec.addrsCalls
	f.update(added(a))
	f.verdict(Verdict{Subnet: a.Subnet})
	if f.rec.addrsCalls != n {
		t.Fatalf("%d address updates for nothing new", f.rec.addrsCalls-n)
	}
}

func TestCandidates(t *testing.T) {
	a, b := lease(1, "198.51.100.1"), lease(2, "")
	f := newFixture(t)
	f.replace(a, b)
	want := Candidate{Subnet: a.Subnet, Private: a.Attrs.PrivateIP, MAC: mac(1), PublicIP: a.Attrs.PublicIP}
	if got := f.rec.candRepl; len(got) != 1 || !slices.Equal(got[0], []Candidate{want}) {
		t.Fatalf("snapshot candidates %+v, want %+v", got, want)
	}
	// A re-announced lease re-announces the candidate (re-probed now).
	f.update(added(a))
	if !slices.Equal(f.rec.candSet, []Candidate{want}) {
		t.Fatalf("after a renewal %+v", f.rec.candSet)
	}
	// Losing the private address drops the candidate; b gaining one adds it.
	noPrivate := a
	noPrivate.Attrs.PrivateIP = netip.Addr{}
	withPrivate := lease(2, "198.51.100.2")
	f.update(added(noPrivate), added(withPrivate))
	if !slices.Equal(f.rec.candDrop, []netip.Prefix{a.Subnet}) || f.rec.candSet[len(f.rec.candSet)-1].Subnet != b.Subnet {
		t.Fatalf("dropped %v, set %+v", f.rec.candDrop, f.rec.candSet)
	}
	f.update(removed(withPrivate))
	if !slices.Equal(f.rec.candDrop, []netip.Prefix{a.Subnet, b.Subnet}) {
		t.Fatalf("dropped %v after b's removal", f.rec.candDrop)
	}
}

func TestNothingBeforeTheFirstSnapshot(t *testing.T) {
	f := newFixture(t)
	f.update(added(lease(1, "")))
	f.verdict(Verdict{Subnet: lease(1, "").Subnet})
	if len(f.rec.updates)+len(f.rec.replaces)+len(f.rec.addrs) != 0 {
		t.Fatalf("sent before the snapshot: %+v", f.rec)
	}
	f.replace()
	if len(f.rec.replaces) != 1 || len(f.rec.replaces[0]) != 0 {
		t.Fatalf("snapshot %+v", f.rec.replaces)
	}
}

func TestOptions(t *testing.T) {
	if _, err := New(Options{Network: netip.MustParsePrefix("10.244.0.1/16"), Peers: &recorder{}}); err == nil || !strings.Contains(err.Error(), "Network 10.244.0.1/16") {
		t.Errorf("unmasked network: %v", err)
	}
	if _, err := New(Options{Network: testNetwork}); err == nil || !strings.Contains(err.Error(), "Peers is nil") {
		t.Errorf("no Peers: %v", err)
	}
}
