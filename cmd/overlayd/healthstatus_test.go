package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/statusdoc"
)

// TestStatusPrintsPeerHealth: `overlayd status` shows each peer's probe
// state on both paths and the losses.
func TestStatusPrintsPeerHealth(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	doc := statusdoc.Doc{Ready: true, Health: &statusdoc.Health{Port: 8476, Interval: "10s", Sample: 32, Peers: []statusdoc.PeerHealth{
		{Subnet: "10.244.2.0/24",
			Overlay:  statusdoc.PathHealth{Addr: "10.244.2.0", State: "unreachable", Since: now.Add(-15 * time.Second), Sent: 9, Lost: 2},
			Underlay: statusdoc.PathHealth{Addr: "192.0.2.11", State: "reachable", RTT: "312µs", Sent: 9}},
		{Subnet: "10.244.3.0/24", Overlay: statusdoc.PathHealth{State: "unknown"}, Underlay: statusdoc.PathHealth{State: "unknown"}},
	}}}
	var b bytes.Buffer
	printStatus(&b, doc, 50, now)
	out := b.String()
	for _, want := range []string{"health probes: port 8476, every 10s, 32 peers per round", "10.244.2.0/24", "UNREACHABLE for 15s",
		"reachable, rtt 312µs", "2/9", "0/9", "not probed yet"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
}
