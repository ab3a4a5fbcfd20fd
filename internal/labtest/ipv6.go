package labtest

import (
	"fmt"
	"net/netip"
	"os/exec"
	"testing"

	"github.com/overlayd/overlayd/internal/lab"
)

// NodeIPv6 is the IPv6 underlay address AddIPv6Underlay gives node i
// (2001:db8:ffff::<i+1>, documentation space).
func NodeIPv6(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("2001:db8:ffff::%d", i+1)) }

// AddIPv6Underlay puts NodeIPv6(i)/64 on every lab node's underlay
// interface, inside the lab's own namespaces, without duplicate address
// detection so that it is usable at once: enough for an agent with
// EnableIPv6 to find an IPv6 address to advertise.
func AddIPv6Underlay(t testing.TB, l *lab.Lab) {
	t.Helper()
	for i, n := range l.Nodes {
		out, err := exec.Command("ip", "-n", n.NS, "addr", "add", NodeIPv6(i).String()+"/64", "dev", n.Iface, "nodad").CombinedOutput()
		if err != nil {
			t.Fatalf("add %s on %s: %v: %s", NodeIPv6(i), n.Name, err, out)
		}
	}
}
