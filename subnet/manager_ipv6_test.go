package subnet_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

const (
	cfgDual = `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8::/48","Backend":{"Type":"vxlan"}}`
	cfgV6   = `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/48","Backend":{"Type":"vxlan"}}`
	// cfgV6Big has 2^61 candidate /64s: allocation must not walk them.
	cfgV6Big = `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"2000::/3","IPv6SubnetLen":64,"Backend":{"Type":"vxlan"}}`
	ourIPv6  = "2001:db8:ffff::1"
	ourMAC6  = "d6:87:b6:fa:f7:32"
	otherV6  = "2001:db8:ffff::2"
)

// dualAttrs are our attributes in a dual-stack (ip set) or IPv6-only
// (ip "") lease.
func dualAttrs(ip, ip6, mac, mac6 string) subnet.LeaseAttrs {
	a := subnet.LeaseAttrs{
		PublicIPv6:    netip.MustParseAddr(ip6),
		BackendType:   "vxlan",
		BackendV6Data: []byte(fmt.Sprintf(`{"VNI":1,"VtepMAC":%q}`, mac6)),
	}
	if ip != "" {
		a.PublicIP = netip.MustParseAddr(ip)
		a.BackendData = []byte(fmt.Sprintf(`{"VNI":1,"VtepMAC":%q}`, mac))
	}
	return a
}

func withAttrs(a subnet.LeaseAttrs) func(*subnet.ManagerOptions) {
	return func(o *subnet.ManagerOptions) { o.Attrs = a }
}

func id(v4, v6 string) subnet.LeaseID {
	var l subnet.LeaseID
	if v4 != "" {
		l.Subnet = netip.MustParsePrefix(v4)
	}
	if v6 != "" {
		l.IPv6Subnet = netip.MustParsePrefix(v6)
	}
	return l
}

func TestAcquireIPv6(t *testing.T) {
	ours := dualAttrs(ourIP, ourIPv6, ourMAC, ourMAC6)
	ours6 := dualAttrs("", ourIPv6, "", ourMAC6)
	tests := []struct {
		name  string
		cfg   string
		attrs subnet.LeaseAttrs
		prev  subnet.LeaseID
		setup func(t *testing.T, e *testEnv)
		// want is the lease got; "" parts must be invalid, "*" any
		// in-range subnet.
		want4, want6 string
	}{
		{name: "dual-stack: a new lease has both subnets", cfg: cfgDual, attrs: ours, want4: "*", want6: "*"},
		{name: "IPv6-only: a new lease has no IPv4 subnet", cfg: cfgV6, attrs: ours6, want4: "", want6: "*"},
		{name: "dual-stack: our lease is reused by PublicIP", cfg: cfgDual, attrs: ours,
			setup: func(t *testing.T, e *testEnv) {
				e.putID(t, id("10.5.7.0/24", "2001:db8:0:7::/64"), dualAttrs(ourIP, ourIPv6, ourMAC, ourMAC6))
			}, want4: "10.5.7.0/24", want6: "2001:db8:0:7::/64"},
		{name: "IPv6-only: our lease is reused by PublicIPv6", cfg: cfgV6, attrs: ours6,
			setup: func(t *testing.T, e *testEnv) {
				e.putID(t, id("", "2001:db8:0:9::/64"), dualAttrs("", ourIPv6, "", ourMAC6))
				e.putID(t, id("", "2001:db8:0:8::/64"), dualAttrs("", otherV6, "", otherMAC))
			}, want4: "", want6: "2001:db8:0:9::/64"},
		{name: "IPv6 turned on: our IPv4-only lease no longer fits and is replaced, keeping its IPv4 subnet", cfg: cfgDual, attrs: ours,
			setup: func(t *testing.T, e *testEnv) { e.put(t, "10.5.7.0/24", ourIP, ourMAC, time.Time{}) },
			prev:  id("10.5.7.0/24", ""), want4: "10.5.7.0/24", want6: "*"},
		{name: "IPv6 turned off: the previous file's IPv4 subnet is reused alone", cfg: cfg16, attrs: ours,
			prev: id("10.5.9.0/24", "2001:db8:0:9::/64"), want4: "10.5.9.0/24", want6: ""},
		{name: "dual-stack: the previous subnet file's pair is reused when free", cfg: cfgDual, attrs: ours,
			prev: id("10.5.9.0/24", "2001:db8:0:9::/64"), want4: "10.5.9.0/24", want6: "2001:db8:0:9::/64"},
		{name: "dual-stack: previous IPv6 subnet held by another node: a new pair", cfg: cfgDual, attrs: ours,
			prev: id("10.5.9.0/24", "2001:db8:0:9::/64"),
			setup: func(t *testing.T, e *testEnv) {
				e.putID(t, id("10.5.10.0/24", "2001:db8:0:9::/64"), dualAttrs(otherIP, otherV6, otherMAC, otherMAC))
			}, want4: "*", want6: "*"},
		{name: "a /3 IPv6 network: allocation does not walk 2^61 subnets", cfg: cfgV6Big, attrs: ours, want4: "*", want6: "*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.cfg)
			if tt.setup != nil {
				tt.setup(t, e)
			}
			m := e.manager(t, withAttrs(tt.attrs), func(o *subnet.ManagerOptions) {
				o.PreviousSubnet, o.PreviousIPv6Subnet = tt.prev.Subnet, tt.prev.IPv6Subnet
			})
			got, err := m.Acquire(context.Background())
			if err != nil {
				t.Fatalf("Acquire: %v\n%s", err, e.logs)
			}
			checkPart(t, "Subnet", got.Subnet, tt.want4, e.cfg.InRange)
			checkPart(t, "IPv6Subnet", got.IPv6Subnet, tt.want6, e.cfg.InRangeV6)
			stored, ok := e.reg.LeaseByID(got.ID())
			if !ok || !subnet.AttrsEqual(stored.Attrs, tt.attrs) {
				t.Errorf("stored lease %s: %+v (found %v), want attrs %+v", got.ID().KeyName(), stored, ok, tt.attrs)
			}
			if tt.prev.IPv6Subnet.IsValid() && tt.want6 == "*" && got.IPv6Subnet == tt.prev.IPv6Subnet {
				t.Errorf("took previous IPv6 subnet %s, which another node holds", got.IPv6Subnet)
			}
			if n := len(e.reg.Leases()); tt.name[:11] == "IPv6 turned" && n != 1 {
				t.Errorf("%d leases after replacing ours, want 1: %+v", n, e.reg.Leases())
			}
		})
	}
}

func checkPart(t *testing.T, field string, got netip.Prefix, want string, inRange func(netip.Prefix) bool) {
	t.Helper()
	switch want {
	case "":
		if got.IsValid() {
			t.Errorf("%s = %s, want none", field, got)
		}
	case "*":
		if !inRange(got) {
			t.Errorf("%s = %s, want one in range", field, got)
		}
	default:
		if got != netip.MustParsePrefix(want) {
			t.Errorf("%s = %s, want %s", field, got, want)
		}
	}
}

func (e *testEnv) putID(t *testing.T, lid subnet.LeaseID, a subnet.LeaseAttrs) {
	t.Helper()
	if err := e.reg.PutLease(subnet.Lease{Subnet: lid.Subnet, IPv6Subnet: lid.IPv6Subnet, Attrs: a, Expiration: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// TestAcquireIPv6AvoidsTakenSubnets fills all but one IPv6 subnet of a
// small IPv6 network: the free one is picked, whatever the IPv4 side.
func TestAcquireIPv6AvoidsTakenSubnets(t *testing.T) {
	cfg := `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8::/60","IPv6SubnetLen":62,"Backend":{"Type":"vxlan"}}`
	e := newEnv(t, cfg)
	// IPv6 subnets /62 of a /60: ::4, ::8, ::c are candidates (::0 skipped).
	e.putID(t, id("10.5.1.0/24", "2001:db8:0:4::/62"), dualAttrs(otherIP, otherV6, otherMAC, otherMAC))
	e.putID(t, id("", "2001:db8:0:c::/62"), dualAttrs("", "2001:db8:ffff::3", "", otherMAC))
	m := e.manager(t, withAttrs(dualAttrs(ourIP, ourIPv6, ourMAC, ourMAC6)))
	got, err := m.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire: %v\n%s", err, e.logs)
	}
	if got.IPv6Subnet != netip.MustParsePrefix("2001:db8:0:8::/62") || got.Subnet == netip.MustParsePrefix("10.5.1.0/24") {
		t.Errorf("got %s", got.ID())
	}
	// Now every IPv6 subnet is taken: a second node is out of subnets.
	m2 := e.manager(t, withAttrs(dualAttrs("192.0.2.9", "2001:db8:ffff::9", ourMAC, ourMAC6)),
		func(o *subnet.ManagerOptions) { o.Registerer = nil })
	_, err = m2.Acquire(context.Background())
	if err == nil || !errContains(err, "out of IPv6 subnets", "IPv6SubnetMin 2001:db8:0:4::") {
		t.Errorf("second Acquire: %v, want out of IPv6 subnets", err)
	}
}

func errContains(err error, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			return false
		}
	}
	return true
}

// TestRenewalKeepsIPv6Subnet: renewal rewrites the dual-stack key, and a
// deleted dual-stack lease is re-created with both subnets.
func TestRenewalKeepsIPv6Subnet(t *testing.T) {
	e := newEnv(t, cfgDual)
	a := dualAttrs(ourIP, ourIPv6, ourMAC, ourMAC6)
	m, l := acquired(t, e, withAttrs(a))
	r := run(t, m.RunRenewal)
	due := nextTimer(t, e)
	if err := e.reg.DeleteLease(context.Background(), l.ID()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(due.Sub(e.clock.Now()))
	eventually(t, "the dual-stack lease re-created", func() bool { _, ok := e.reg.LeaseByID(l.ID()); return ok })
	if got := m.Lease(); got.ID() != l.ID() || !got.IPv6Subnet.IsValid() {
		t.Errorf("lease after re-creation %s, want %s", got.ID(), l.ID())
	}
	if err := r.stop(); err != nil {
		t.Errorf("RunRenewal: %v", err)
	}
}

func TestManagerOptionsIPv6(t *testing.T) {
	tests := []struct {
		cfg   string
		attrs subnet.LeaseAttrs
		want  string
	}{
		{cfgDual, attrs(ourIP, ourMAC), `Attrs.PublicIPv6 "invalid IP" is not an IPv6 address`},
		{cfgV6, dualAttrs(ourIP, ourIPv6, ourMAC, ourMAC6), "Attrs.PublicIP 192.0.2.1 is set but the config has EnableIPv4 false"},
		{cfgV6, dualAttrs("", ourIPv6, "", ourMAC6), ""},
	}
	for _, tt := range tests {
		e := newEnv(t, tt.cfg)
		o := e.options()
		o.Attrs = tt.attrs
		_, err := subnet.NewManager(o)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("NewManager(%s, %+v) = %v, want %q", tt.cfg, tt.attrs, err, tt.want)
		}
	}
}

// TestWatchIPv6Peers: IPv6-only and dual-stack peers are delivered with
// their IPv6Subnet, each IPv6-only peer on its own (they all have an
// invalid Subnet), and our own IPv6-only lease is not a peer.
func TestWatchIPv6Peers(t *testing.T) {
	e := newEnv(t, cfgV6)
	e.putID(t, id("", "2001:db8:0:2::/64"), dualAttrs("", "2001:db8:ffff::2", "", "02:00:00:00:00:02"))
	e.putID(t, id("", "2001:db8:0:3::/64"), dualAttrs("", "2001:db8:ffff::3", "", "02:00:00:00:00:03"))
	m, own := acquired(t, e, withAttrs(dualAttrs("", ourIPv6, "", ourMAC6)))
	sink := subnettest.NewSink()
	run(t, func(ctx context.Context) error { return m.RunWatch(ctx, sink) })
	if !sink.WaitFor(wait, func(s *subnettest.Sink) bool { return s.Replaces() == 1 }) {
		t.Fatal("no snapshot")
	}
	eventually(t, "watch", func() bool { return e.reg.Watchers() == 1 })
	want := "0.0.0.0-0&2001:db8:0:2::-64=invalid IP/? 0.0.0.0-0&2001:db8:0:3::-64=invalid IP/?"
	if got := peerSummary(sink.Peers()); got != want {
		t.Fatalf("snapshot %s, want %s (own lease %s excluded)", got, want, own.ID())
	}
	e.putID(t, id("10.5.4.0/24", "2001:db8:0:4::/64"), dualAttrs("192.0.2.4", "2001:db8:ffff::4", "02:00:00:00:00:04", "02:00:00:00:00:44"))
	ok := sink.WaitFor(wait, func(s *subnettest.Sink) bool {
		for _, ev := range s.Events() {
			if ev.Lease.IPv6Subnet == netip.MustParsePrefix("2001:db8:0:4::/64") && ev.Lease.Subnet == netip.MustParsePrefix("10.5.4.0/24") {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Errorf("no event for the dual-stack peer: %s", eventSummary(sink.Events()))
	}
}

// TestWatchWarnsAboutIPv4OnlyPeersInADualStackNetwork: a peer lease
// without IPv6 subnet in a dual-stack network is delivered as usual and
// warned about once (flanneld v0.28 crashes next to it).
func TestWatchWarnsAboutIPv4OnlyPeersInADualStackNetwork(t *testing.T) {
	e := newEnv(t, cfgDual)
	e.put(t, "10.5.2.0/24", otherIP, otherMAC, t0.Add(time.Hour))
	m, _ := acquired(t, e, withAttrs(dualAttrs(ourIP, ourIPv6, ourMAC, ourMAC6)))
	sink := subnettest.NewSink()
	run(t, func(ctx context.Context) error { return m.RunWatch(ctx, sink) })
	if !sink.WaitFor(wait, func(s *subnettest.Sink) bool { return len(s.Peers()) == 1 }) {
		t.Fatalf("peers %v", sink.Peers())
	}
	eventually(t, "watch", func() bool { return e.reg.Watchers() == 1 })
	e.put(t, "10.5.2.0/24", otherIP, otherMAC, t0.Add(2*time.Hour)) // a renewal: no second warning
	e.putID(t, id("10.5.3.0/24", "2001:db8:0:3::/64"), dualAttrs("192.0.2.3", "2001:db8:ffff::3", "02:00:00:00:00:03", "02:00:00:00:06:03"))
	if !sink.WaitFor(wait, func(s *subnettest.Sink) bool { return len(s.Peers()) == 2 }) {
		t.Fatalf("peers %v", sink.Peers())
	}
	if n := e.logs.Count("a peer lease has no IPv6 subnet"); n != 1 {
		t.Errorf("%d warnings, want 1 (for 10.5.2.0-24 only):\n%s", n, e.logs)
	}
	e.logs.MustContain(t, "key=10.5.2.0-24")
}
