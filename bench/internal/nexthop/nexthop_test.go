package nexthop_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/bench/internal/benchns"
	"github.com/overlayd/overlayd/bench/internal/nexthop"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TestNexthopRouteLooksLikeIPRoute2s writes a nexthop and a route using it
// and checks that ip(8) shows what `ip nexthop add` / `ip route add nhid`
// would have made.
func TestNexthopRouteLooksLikeIPRoute2s(t *testing.T) {
	netnsutil.RequireRoot(t)
	ns, err := benchns.New("nhtest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	c, err := nexthop.Open(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, err := c.Supported(); err != nil || !ok {
		t.Skipf("kernel without nexthop objects (supported %v, err %v)", ok, err)
	}
	gw, dst := netip.MustParseAddr("10.0.7.0"), netip.MustParsePrefix("10.0.7.0/24")
	if err := c.ReplaceNexthop(7, gw, ns.Device.Index); err != nil {
		t.Fatal(err)
	}
	out, _ := netnsutil.Exec(context.Background(), ns.Name, "ip", "nexthop", "show")
	t.Logf("ip nexthop: %s", out)
	if err := c.ReplaceRoute(dst, 7); err != nil {
		t.Fatal(err)
	}
	out, err = netnsutil.Exec(context.Background(), ns.Name, "ip", "route", "show", "10.0.7.0/24")
	if err != nil {
		t.Fatal(err)
	}
	want := "10.0.7.0/24 nhid 7 via 10.0.7.0 dev flannel.1 onlink"
	if !strings.Contains(out, want) {
		t.Errorf("ip route show: %q, want %q", out, want)
	}
}
