package nsnet

import (
	"net/netip"
	"testing"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// VethPairT makes two namespaces (tag+"a", tag+"b") joined by a veth pair
// with the first two addresses of the /24 network (e.g. 203.0.113.1 and
// .2), removed at the end of the test; it returns their endpoints a and b.
func VethPairT(t testing.TB, tag string, network netip.Prefix) (Endpoint, Endpoint) {
	t.Helper()
	ipA := network.Masked().Addr().Next()
	ipB := ipA.Next()
	nsA, nsB := netnsutil.NewT(t, tag+"a"), netnsutil.NewT(t, tag+"b")
	netnsutil.MustExec(t, nsA, "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", nsB)
	netnsutil.MustExec(t, nsA, "ip", "addr", "add", ipA.String()+"/24", "dev", "v0")
	netnsutil.MustExec(t, nsA, "ip", "link", "set", "v0", "up")
	netnsutil.MustExec(t, nsB, "ip", "addr", "add", ipB.String()+"/24", "dev", "v1")
	netnsutil.MustExec(t, nsB, "ip", "link", "set", "v1", "up")
	return Endpoint{Name: "a", NS: nsA, IP: ipA}, Endpoint{Name: "b", NS: nsB, IP: ipB}
}
