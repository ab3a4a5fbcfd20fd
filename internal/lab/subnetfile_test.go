package lab

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/overlayd/overlayd/internal/errtest"
	"github.com/overlayd/overlayd/subnet"
)

func TestParseSubnetEnv(t *testing.T) {
	full := SubnetEnv{
		Network: netip.MustParsePrefix("10.244.0.0/16"),
		Subnet:  netip.MustParsePrefix("10.244.5.1/24"),
		MTU:     1450,
		IPMasq:  true,
	}
	tests := []struct {
		name    string
		in      string
		want    SubnetEnv
		wantErr string
	}{
		{name: "flanneld's file", in: "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n", want: full},
		{name: "round trip", in: full.String(), want: full},
		{name: "quotes, comments and extra keys", in: "# x\nFLANNEL_NETWORK=\"10.244.0.0/16\"\n\nFLANNEL_SUBNET=10.244.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\nFLANNEL_IPV6_NETWORK=fc00::/48\n", want: full},
		{name: "no masq key", in: "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.5.1/24\nFLANNEL_MTU=1450\n", want: SubnetEnv{Network: full.Network, Subnet: full.Subnet, MTU: 1450}},
		{name: "missing subnet", in: "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_MTU=1450\n", wantErr: "FLANNEL_SUBNET is missing"},
		{name: "missing mtu", in: "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.5.1/24\n", wantErr: "FLANNEL_MTU is missing"},
		{name: "bad mtu", in: "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.5.1/24\nFLANNEL_MTU=big\n", wantErr: `FLANNEL_MTU "big"`},
		{name: "bad network", in: "FLANNEL_NETWORK=10.244.0.0\nFLANNEL_SUBNET=10.244.5.1/24\nFLANNEL_MTU=1450\n", wantErr: `FLANNEL_NETWORK "10.244.0.0"`},
		{name: "bad masq", in: "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=maybe\n", wantErr: `FLANNEL_IPMASQ "maybe"`},
		{name: "not key=value", in: "FLANNEL_NETWORK\n", wantErr: "not KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSubnetEnv([]byte(tt.in))
			if !errtest.Check(t, err, tt.wantErr) {
				return
			}
			if got != tt.want {
				t.Fatalf("ParseSubnetEnv = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if g, l := full.Gateway(), full.Lease(); g.String() != "10.244.5.1" || l.String() != "10.244.5.0/24" {
		t.Errorf("Gateway, Lease = %s, %s", g, l)
	}
}

func TestCheckPodRoom(t *testing.T) {
	tests := []struct {
		subnet string
		pods   int
		ok     bool
	}{
		{"10.244.5.1/24", 253, true},
		{"10.244.5.1/24", 254, false},
		{"10.244.5.1/30", 1, true},
		{"10.244.5.1/30", 2, false},
	}
	for _, tt := range tests {
		err := checkPodRoom(SubnetEnv{Subnet: netip.MustParsePrefix(tt.subnet)}, tt.pods)
		if (err == nil) != tt.ok {
			t.Errorf("checkPodRoom(%s, %d) = %v, want ok=%t", tt.subnet, tt.pods, err, tt.ok)
		}
	}
}

func TestVtepMAC(t *testing.T) {
	tests := []struct {
		data, want string
		wantErr    bool
	}{
		{data: `{"VNI":1,"VtepMAC":"C6:D2:32:6F:8F:44"}`, want: "c6:d2:32:6f:8f:44"},
		{data: `{"VtepMAC":"0e:0a:46:7c:72:f9"}`, want: "0e:0a:46:7c:72:f9"},
		{data: `{"VNI":1}`, wantErr: true},
		{data: ``, wantErr: true},
	}
	for _, tt := range tests {
		got, err := VtepMAC(subnet.LeaseAttrs{BackendData: json.RawMessage(tt.data)})
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("VtepMAC(%s) = %q, %v", tt.data, got, err)
		}
	}
}
