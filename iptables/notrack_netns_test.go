package iptables

import (
	"net/netip"
	"testing"

	goipt "github.com/coreos/go-iptables/iptables"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

const wantRaw = `-P PREROUTING ACCEPT
-P OUTPUT ACCEPT
-N OVERLAYD-NOTRACK
-A OUTPUT -m comment --comment "overlayd: outer VXLAN never NATed" -j OVERLAYD-NOTRACK
-A OVERLAYD-NOTRACK -s 192.0.2.1/32 -p udp -m udp --dport 8472 -m comment --comment "overlayd: outer VXLAN never NATed" -j CT --notrack
`

// TestNetnsVXLANNoTrack: the exemption is a chain of its own in the raw
// table, repaired when damaged, untouched when in place, removed on request;
// the nat and filter tables are exactly flanneld's (no rule of ours there).
func TestNetnsVXLANNoTrack(t *testing.T) {
	ns := netnsutil.NewT(t, "notrk")
	r := newRunnerInNetns(t, ns, goipt.ProtocolIPv4)
	o := testOptions(r)
	o.VXLANNoTrack = netip.MustParseAddrPort("192.0.2.1:8472")
	m := newTestManager(t, o)
	ensure(t, m)
	assertRaw := func(want string) {
		t.Helper()
		if got := netnsutil.MustExec(t, ns, "iptables", "-t", "raw", "-S"); got != want {
			t.Errorf("iptables -t raw -S\n got:\n%s\nwant:\n%s", got, want)
		}
	}
	assertRaw(wantRaw)
	if r.HasRandomFully() {
		assertNetnsTables(t, ns, observedNAT, observedFilter)
	}
	for _, step := range []struct {
		name       string
		damage     []string
		wantWrites int
	}{
		{"in place", nil, 0},
		{"rule deleted", []string{"iptables", "-t", "raw", "-F", NoTrackChain}, 1},
		{"jump deleted", []string{"iptables", "-t", "raw", "-D", "OUTPUT", "1"}, 1},
	} {
		if step.damage != nil {
			netnsutil.MustExec(t, ns, step.damage...)
		}
		r.writes = 0
		ensure(t, m)
		assertRaw(wantRaw)
		if r.writes != step.wantWrites {
			t.Errorf("%s: %d writes, want %d", step.name, r.writes, step.wantWrites)
		}
	}
	if err := RemoveVXLANNoTrack(r); err != nil {
		t.Fatal(err)
	}
	assertRaw("-P PREROUTING ACCEPT\n-P OUTPUT ACCEPT\n")
	if err := RemoveVXLANNoTrack(r); err != nil { // nothing left: no error
		t.Fatal(err)
	}
}

func TestNoTrackFamilyChecked(t *testing.T) {
	o := testOptions(newFakeRunner(goipt.ProtocolIPv4))
	o.VXLANNoTrack = netip.MustParseAddrPort("[2001:db8::1]:8472")
	if _, err := NewManager(o); err == nil {
		t.Fatal("an IPv6 bind address with an IPv4 runner: want an error")
	}
}
