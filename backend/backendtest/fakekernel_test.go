package backendtest_test

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/backend/backendtest"
)

var _ backend.Kernel = (*backendtest.FakeKernel)(nil)

func setup(t *testing.T) (*backendtest.FakeKernel, int) {
	t.Helper()
	k := backendtest.New()
	dev := k.AddLink(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "flannel.1"}, VxlanId: 1})
	return k, dev
}

func mac(s string) net.HardwareAddr {
	m, _ := net.ParseMAC(s)
	return m
}

func dst(s string) *net.IPNet {
	_, n, _ := net.ParseCIDR(s)
	return n
}

func TestErrnosLikeTheKernel(t *testing.T) {
	k, dev := setup(t)
	fdb := func(ip string) *netlink.Neigh {
		return &netlink.Neigh{LinkIndex: dev, Family: unix.AF_BRIDGE, HardwareAddr: mac("0e:00:00:00:00:01"),
			IP: net.ParseIP(ip), State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF}
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"delete missing neighbour", func() error {
			return k.NeighDel(&netlink.Neigh{LinkIndex: dev, IP: net.ParseIP("10.244.1.0")})
		}, unix.ENOENT},
		{"delete missing fdb entry", func() error { return k.NeighDel(fdb("192.0.2.1")) }, unix.ENOENT},
		{"delete fdb entry without dst", func() error { return k.NeighDel(fdb("")) }, unix.EAFNOSUPPORT},
		{"delete missing route", func() error { return k.RouteDel(&netlink.Route{LinkIndex: dev, Dst: dst("10.244.1.0/24")}) }, unix.ESRCH},
		{"neighbour on a missing link", func() error {
			return k.NeighSet(&netlink.Neigh{LinkIndex: 99, IP: net.ParseIP("10.244.1.0"), HardwareAddr: mac("0e:00:00:00:00:01")})
		}, unix.ENODEV},
		{"fdb entry that is neither permanent nor reachable", func() error {
			n := fdb("192.0.2.1")
			n.State = 0
			return k.NeighSet(n)
		}, unix.EINVAL},
		{"link by missing name", func() error { _, err := k.LinkByName("nope"); return err }, unix.ENODEV},
		{"route lookup without a route", func() error { _, err := k.RouteGet(net.ParseIP("203.0.113.1")); return err }, unix.ENETUNREACH},
	}
	for _, tt := range tests {
		if err := tt.call(); !errors.Is(err, tt.want) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestReplaceSemantics(t *testing.T) {
	k, dev := setup(t)
	n := &netlink.Neigh{LinkIndex: dev, IP: net.ParseIP("10.244.1.0"), HardwareAddr: mac("0e:00:00:00:00:01"), State: netlink.NUD_PERMANENT}
	k.NeighSet(n)
	n.HardwareAddr = mac("0e:00:00:00:00:02")
	k.NeighSet(n)
	if got := k.NeighLines(dev); !slices.Equal(got, []string{"10.244.1.0 lladdr 0e:00:00:00:00:02 PERMANENT"}) {
		t.Errorf("neigh %q", got)
	}
	f := &netlink.Neigh{LinkIndex: dev, Family: unix.AF_BRIDGE, HardwareAddr: mac("0e:00:00:00:00:01"), IP: net.ParseIP("192.0.2.1"), State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF}
	k.NeighSet(f)
	f.IP = net.ParseIP("192.0.2.2")
	k.NeighSet(f)
	k.AppendFDB(dev, mac("0e:00:00:00:00:01"), net.ParseIP("192.0.2.3"))
	want := []string{"0e:00:00:00:00:01 dst 192.0.2.2 self permanent", "0e:00:00:00:00:01 dst 192.0.2.3 self permanent"}
	if got := k.FDBLines(dev); !slices.Equal(got, want) {
		t.Errorf("fdb %q, want %q", got, want)
	}
	r := &netlink.Route{LinkIndex: dev, Dst: dst("10.244.1.0/24"), Gw: net.ParseIP("10.244.1.0"), Flags: int(netlink.FLAG_ONLINK)}
	k.RouteReplace(r)
	r.Gw = net.ParseIP("10.244.1.1")
	k.RouteReplace(r)
	r.Priority = 10
	k.RouteReplace(r)
	want = []string{"10.244.1.0/24 via 10.244.1.1 dev flannel.1 onlink", "10.244.1.0/24 via 10.244.1.1 dev flannel.1 metric 10 onlink"}
	if got := k.RouteLines(); !slices.Equal(got, want) {
		t.Errorf("routes %q, want %q", got, want)
	}
	if err := k.RouteDel(&netlink.Route{LinkIndex: dev, Dst: dst("10.244.1.0/24"), Scope: netlink.SCOPE_LINK}); !errors.Is(err, unix.ESRCH) {
		t.Errorf("delete with the wrong scope: %v, want ESRCH", err)
	}
	if got := k.Writes(); got != 8 {
		t.Errorf("%d writes counted, want 8", got)
	}
}

func TestInputsAreCopied(t *testing.T) {
	k, dev := setup(t)
	ip := net.ParseIP("10.244.1.0").To4()
	hw := mac("0e:00:00:00:00:01")
	k.NeighSet(&netlink.Neigh{LinkIndex: dev, IP: ip, HardwareAddr: hw, State: netlink.NUD_PERMANENT})
	ip[3], hw[5] = 9, 9
	if got := k.NeighLines(dev); !slices.Equal(got, []string{"10.244.1.0 lladdr 0e:00:00:00:00:01 PERMANENT"}) {
		t.Errorf("stored entry changed with the caller's buffers: %q", got)
	}
}

func TestFaultsAndDumps(t *testing.T) {
	k, dev := setup(t)
	for i := range 4 {
		k.NeighSet(&netlink.Neigh{LinkIndex: dev, IP: net.IPv4(10, 244, byte(i), 0), HardwareAddr: mac("0e:00:00:00:00:01"), State: netlink.NUD_PERMANENT})
	}
	k.InterruptNextDump(backendtest.OpNeighList)
	got, err := k.NeighList(dev, unix.AF_INET)
	if !errors.Is(err, netlink.ErrDumpInterrupted) || len(got) != 2 {
		t.Fatalf("interrupted dump: %d entries, %v; want partial results and ErrDumpInterrupted", len(got), err)
	}
	if got, err := k.NeighList(dev, unix.AF_INET); err != nil || len(got) != 4 {
		t.Fatalf("next dump: %d, %v", len(got), err)
	}
	k.InterruptNextDump(backendtest.OpRouteList)
	if got, err := k.RouteListFiltered(unix.AF_INET, nil, 0); !errors.Is(err, netlink.ErrDumpInterrupted) || got != nil {
		t.Fatalf("interrupted route dump: %v, %v", got, err)
	}
	k.Fail(backendtest.OpRouteReplace, "10.244.2.0/24", 2, unix.ENOBUFS)
	r := &netlink.Route{LinkIndex: dev, Dst: dst("10.244.1.0/24")}
	if err := k.RouteReplace(r); err != nil {
		t.Fatalf("other key failed: %v", err)
	}
	r.Dst = dst("10.244.2.0/24")
	for i, want := range []error{unix.ENOBUFS, unix.ENOBUFS, nil} {
		if err := k.RouteReplace(r); !errors.Is(err, want) && err != want {
			t.Errorf("call %d: %v, want %v", i, err, want)
		}
	}
	if n := k.Count(backendtest.OpRouteReplace); n != 4 {
		t.Errorf("%d route writes counted, want 4", n)
	}
}

func TestDeleteLinkRemovesItsEntries(t *testing.T) {
	k, dev := setup(t)
	k.NeighSet(&netlink.Neigh{LinkIndex: dev, IP: net.ParseIP("10.244.1.0"), HardwareAddr: mac("0e:00:00:00:00:01"), State: netlink.NUD_PERMANENT})
	k.AppendFDB(dev, mac("0e:00:00:00:00:01"), net.ParseIP("192.0.2.1"))
	k.RouteReplace(&netlink.Route{LinkIndex: dev, Dst: dst("10.244.1.0/24")})
	k.DeleteLink("flannel.1")
	if len(k.NeighLines(dev))+len(k.FDBLines(dev))+len(k.RouteLines()) != 0 {
		t.Fatal("entries survived their link")
	}
	if _, err := k.LinkByIndex(dev); !errors.Is(err, unix.ENODEV) {
		t.Fatalf("link still there: %v", err)
	}
}

func TestRouteGet(t *testing.T) {
	k, dev := setup(t)
	k.AddConnected(netip.MustParsePrefix("192.0.2.0/24"), dev)
	k.SetDefaultGateway(netip.MustParseAddr("192.0.2.254"), dev)
	near, _ := k.RouteGet(net.ParseIP("192.0.2.7"))
	far, _ := k.RouteGet(net.ParseIP("198.51.100.7"))
	if len(near) != 1 || near[0].Gw != nil || len(far) != 1 || !far[0].Gw.Equal(net.ParseIP("192.0.2.254")) {
		t.Fatalf("near %v far %v", near, far)
	}
}
