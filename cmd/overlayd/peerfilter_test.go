package main

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/overlayd/overlayd/subnet"
)

type nopSink struct{}

func (nopSink) ReplacePeers([]subnet.Lease) {}
func (nopSink) UpdatePeers([]subnet.Event)  {}

func vxlanLease(sn, public, private string) subnet.Lease {
	l := subnet.Lease{Subnet: netip.MustParsePrefix(sn), Attrs: subnet.LeaseAttrs{
		PublicIP: netip.MustParseAddr(public), BackendType: subnet.BackendVXLAN}}
	if private != "" {
		l.Attrs.PrivateIP = netip.MustParseAddr(private)
	}
	return l
}

func TestFilterFeedSources(t *testing.T) {
	a := vxlanLease("10.244.1.0/24", "203.0.113.1", "198.51.100.2")
	b := vxlanLease("10.244.2.0/24", "203.0.113.2", "")
	udp := subnet.Lease{Subnet: netip.MustParsePrefix("10.244.3.0/24"), Attrs: subnet.LeaseAttrs{
		PublicIP: netip.MustParseAddr("203.0.113.3"), BackendType: "udp"}}
	tests := []struct {
		name   string
		events []subnet.Event
		want   []string
	}{
		{"snapshot only", nil, []string{"198.51.100.2", "203.0.113.1", "203.0.113.2"}},
		{"peer removed", []subnet.Event{{Type: subnet.EventRemoved, Lease: b}}, []string{"198.51.100.2", "203.0.113.1"}},
		{"lease turned unreadable keeps the last good addresses",
			[]subnet.Event{{Type: subnet.EventAdded, Lease: subnet.Lease{Subnet: a.Subnet, Unreadable: true}}},
			[]string{"198.51.100.2", "203.0.113.1", "203.0.113.2"}},
		{"new peer", []subnet.Event{{Type: subnet.EventAdded, Lease: vxlanLease("10.244.4.0/24", "203.0.113.4", "")}},
			[]string{"198.51.100.2", "203.0.113.1", "203.0.113.2", "203.0.113.4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFilterFeed(nopSink{})
			f.ReplacePeers([]subnet.Lease{a, b, udp})
			f.UpdatePeers(tt.events)
			var got []string
			for _, ip := range f.sources() {
				got = append(got, ip.String())
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("sources %v, want %v", got, tt.want)
			}
		})
	}
}
