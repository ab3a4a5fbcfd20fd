package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// rules6Config is a dual-stack network config: flannel's IPv4 network
// and an IPv6 network of /64 node subnets.
const (
	rules6Network = "2001:db8:1000::/48"
	rules6Config  = `{"Network":"10.244.0.0/16","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"` + rules6Network + `","Backend":{"Type":"vxlan"}}`
)

// TestNFTablesWithIPv6IsRefused: the nftables mode is IPv4 only, so
// EnableNFTables with EnableIPv6 ends the start with an error naming both
// (and the IPv6 network) instead of leaving IPv6 without rules.
func TestNFTablesWithIPv6IsRefused(t *testing.T) {
	cfg := strings.Replace(rules6Config, `"EnableIPv6"`, `"EnableNFTables":true,"EnableIPv6"`, 1)
	l := labtest.NewLab(t, lab.Options{Nodes: 1, CNIPlugin: overlaydBin}, cfg)
	ctx := labtest.Context(t, 30*time.Second)
	n := l.Nodes[0]
	a, err := l.StartAgent(ctx, n, lab.OverlaydArgs(overlaydBin, l, n))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("overlayd still runs with EnableNFTables and EnableIPv6:\n%s", a.LogTail(20))
	}
	for _, want := range []string{"EnableNFTables with EnableIPv6", rules6Network} {
		if err := labtest.LogContains(a, want); err != nil {
			t.Fatal(err)
		}
	}
}
