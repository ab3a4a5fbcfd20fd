package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TestBlackholeRouteInNamespace: the route is added once, found the next
// time (no write), and added again after somebody deletes it.
func TestBlackholeRouteInNamespace(t *testing.T) {
	netnsutil.RequireRoot(t)
	ns := netnsutil.NewT(t, "bhole")
	h, err := netnsutil.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	sn := netip.MustParsePrefix("10.244.7.0/24")
	for i, want := range []bool{true, false} {
		wrote, err := ensureBlackholeRoute(h, sn)
		if err != nil || wrote != want {
			t.Fatalf("call %d: wrote %v, err %v; want wrote %v", i, wrote, err, want)
		}
	}
	if out := netnsutil.MustExec(t, ns, "ip", "route", "show", "type", "blackhole"); !strings.Contains(out, "blackhole 10.244.7.0/24") {
		t.Fatalf("ip route show type blackhole:\n%s", out)
	}
	netnsutil.MustExec(t, ns, "ip", "route", "del", "blackhole", "10.244.7.0/24")
	if wrote, err := ensureBlackholeRoute(h, sn); err != nil || !wrote {
		t.Fatalf("after deletion: wrote %v, err %v", wrote, err)
	}
}
