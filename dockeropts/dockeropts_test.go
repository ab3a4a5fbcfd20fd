package dockeropts

import (
	"net/netip"
	"testing"

	"github.com/overlayd/overlayd/subnet"
)

func TestRender(t *testing.T) {
	env := subnet.SubnetEnv{Network: netip.MustParsePrefix("10.244.0.0/16"), Subnet: netip.MustParsePrefix("10.244.99.0/24"), MTU: 1450, IPMasq: true}
	tests := []struct {
		name string
		o    Options
		env  func(*subnet.SubnetEnv)
		want string
	}{
		{name: "both by default", o: Options{Key: "DOCKER_NETWORK_OPTIONS"}, want: `DOCKER_OPT_BIP="--bip=10.244.99.1/24"
DOCKER_OPT_IPMASQ="--ip-masq=false"
DOCKER_OPT_MTU="--mtu=1450"
DOCKER_NETWORK_OPTIONS=" --bip=10.244.99.1/24 --ip-masq=false --mtu=1450"
`},
		{name: "individual only", o: Options{Key: "DOCKER_OPTS", Individual: true}, want: `DOCKER_OPT_BIP="--bip=10.244.99.1/24"
DOCKER_OPT_IPMASQ="--ip-masq=false"
DOCKER_OPT_MTU="--mtu=1450"
`},
		{name: "combined without ip-masq", o: Options{Key: "DOCKER_OPTS", Combined: true, NoIPMasq: true},
			want: "DOCKER_OPTS=\" --bip=10.244.99.1/24 --mtu=1450\"\n"},
		{name: "a value the key already had comes first", o: Options{Key: "DOCKER_OPTS", Combined: true, KeyPrefix: "--debug"},
			want: "DOCKER_OPTS=\"--debug  --bip=10.244.99.1/24 --ip-masq=false --mtu=1450\"\n"},
		{name: "no masquerade on the host: Docker masquerades", o: Options{Key: "K", Individual: true},
			env: func(e *subnet.SubnetEnv) { e.IPMasq = false }, want: `DOCKER_OPT_BIP="--bip=10.244.99.1/24"
DOCKER_OPT_IPMASQ="--ip-masq=true"
DOCKER_OPT_MTU="--mtu=1450"
`},
	}
	for _, tt := range tests {
		e := env
		if tt.env != nil {
			tt.env(&e)
		}
		if got := string(Render(e, tt.o)); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}
