package lab

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/internal/errtest"
)

func TestPlanSites(t *testing.T) {
	tests := []struct {
		name    string
		nodes   int
		groups  [][]int
		want    [][]int
		wantErr string
	}{
		{name: "one site per node", nodes: 3, want: [][]int{{0}, {1}, {2}}},
		{name: "group first", nodes: 3, groups: [][]int{{0, 2}}, want: [][]int{{0, 2}, {1}}},
		{name: "group later", nodes: 4, groups: [][]int{{3, 1}}, want: [][]int{{0}, {3, 1}, {2}}},
		{name: "out of range", nodes: 2, groups: [][]int{{0, 2}}, wantErr: "names node 2"},
		{name: "twice", nodes: 3, groups: [][]int{{0, 1}, {1, 2}}, wantErr: "node 1 is in SameSite[0] and SameSite[1]"},
		{name: "empty group", nodes: 2, groups: [][]int{{}}, wantErr: "SameSite[0] is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := planSites(tt.nodes, tt.groups)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("planSites = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestPlanNodesAddresses(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name string
		opts Options
		want []nodePlan
	}{
		{
			name: "flat",
			opts: Options{Nodes: 2, Topology: Flat},
			want: []nodePlan{
				{index: 0, site: -1, underlay: a("192.0.2.10"), gateway: a("192.0.2.254"), public: a("192.0.2.10")},
				{index: 1, site: -1, underlay: a("192.0.2.11"), gateway: a("192.0.2.254"), public: a("192.0.2.11")},
			},
		},
		{
			name: "nat, same private address everywhere",
			opts: Options{Nodes: 2, Topology: NAT},
			want: []nodePlan{
				{index: 0, site: 0, underlay: a("198.51.100.2"), gateway: a("198.51.100.1"), public: a("203.0.113.10")},
				{index: 1, site: 1, underlay: a("198.51.100.2"), gateway: a("198.51.100.1"), public: a("203.0.113.11")},
			},
		},
		{
			name: "nat with a shared site",
			opts: Options{Nodes: 3, Topology: NAT, SameSite: [][]int{{0, 2}}},
			want: []nodePlan{
				{index: 0, site: 0, underlay: a("198.51.100.2"), gateway: a("198.51.100.1"), public: a("203.0.113.10")},
				{index: 1, site: 1, underlay: a("198.51.100.2"), gateway: a("198.51.100.1"), public: a("203.0.113.11")},
				{index: 2, site: 0, underlay: a("198.51.100.3"), gateway: a("198.51.100.1"), public: a("203.0.113.12")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := planNodes(tt.opts)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("planNodes = %+v, %v\nwant %+v", got, err, tt.want)
			}
		})
	}
}

func TestNATRules(t *testing.T) {
	got := natRules([]natPair{{private: netip.MustParseAddr("198.51.100.2"), public: netip.MustParseAddr("203.0.113.10")}})
	want := `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 203.0.113.10/32 -j DNAT --to-destination 198.51.100.2
-A OUTPUT -d 203.0.113.10/32 -j DNAT --to-destination 198.51.100.2
-A POSTROUTING -s 198.51.100.2/32 -o wan0 -j SNAT --to-source 203.0.113.10
-A POSTROUTING -s 198.51.100.2/32 -d 198.51.100.0/24 -m conntrack --ctstate DNAT -j SNAT --to-source 203.0.113.10
COMMIT
`
	if got != want {
		t.Fatalf("natRules:\n%s\nwant:\n%s", got, want)
	}
}

func TestOptionsValidate(t *testing.T) {
	ok := Options{Nodes: 2, EtcdEndpoint: "http://127.0.0.1:2379"}
	tests := []struct {
		name    string
		mutate  func(*Options)
		wantErr string
	}{
		{name: "valid", mutate: func(*Options) {}},
		{name: "no nodes", mutate: func(o *Options) { o.Nodes = 0 }, wantErr: "Nodes 0"},
		{name: "too many nodes", mutate: func(o *Options) { o.Nodes = MaxNodes + 1 }, wantErr: "Nodes 241"},
		{name: "negative pods", mutate: func(o *Options) { o.PodsPerNode = -1 }, wantErr: "PodsPerNode -1"},
		{name: "bad topology", mutate: func(o *Options) { o.Topology = 7 }, wantErr: "Topology 7"},
		{name: "unmasked network", mutate: func(o *Options) { o.Network = netip.MustParsePrefix("10.244.1.0/16") }, wantErr: "Network 10.244.1.0/16"},
		{name: "no etcd", mutate: func(o *Options) { o.EtcdEndpoint = "" }, wantErr: "EtcdEndpoint is empty"},
		{name: "etcd without port", mutate: func(o *Options) { o.EtcdEndpoint = "http://127.0.0.1" }, wantErr: `etcd endpoint "http://127.0.0.1"`},
		{name: "same site on flat", mutate: func(o *Options) { o.SameSite = [][]int{{0, 1}} }, wantErr: "SameSite needs the NAT topology"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mutate(&o)
			err := o.withDefaults().validate()
			errtest.Check(t, err, tt.wantErr)
		})
	}
}

func TestParseTopology(t *testing.T) {
	for _, top := range []Topology{Flat, NAT} {
		got, err := ParseTopology(top.String())
		if err != nil || got != top {
			t.Errorf("ParseTopology(%q) = %v, %v", top, got, err)
		}
	}
	if _, err := ParseTopology("mesh"); err == nil {
		t.Error("ParseTopology(mesh) succeeded")
	}
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in, wantHost string
		wantErr      bool
	}{
		{in: "http://127.0.0.1:41234", wantHost: "127.0.0.1:41234"},
		{in: "https://127.0.0.1:2379", wantHost: "127.0.0.1:2379"},
		{in: "http://127.0.0.1", wantErr: true},
		{in: "unix:///run/etcd.sock", wantErr: true},
	}
	for _, tt := range tests {
		_, host, err := parseEndpoint(tt.in)
		if (err != nil) != tt.wantErr || host != tt.wantHost {
			t.Errorf("parseEndpoint(%q) = %q, %v", tt.in, host, err)
		}
	}
}
