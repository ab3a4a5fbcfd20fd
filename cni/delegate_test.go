package cni

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/internal/errtest"
	"github.com/overlayd/overlayd/subnet"
)

const (
	subnetEnvV4   = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
	subnetEnvDual = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\n" +
		"FLANNEL_IPV6_NETWORK=2001:db8:44::/56\nFLANNEL_IPV6_SUBNET=2001:db8:44:1::1/64\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ=false\n"
	// kubeFlannelConf is the flannel entry of kube-flannel's conflist,
	// with the list's name and cniVersion, as a runtime passes it.
	kubeFlannelConf = `{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}}`
)

func mustEnv(t *testing.T, data string) subnet.SubnetEnv {
	t.Helper()
	env, err := parseSubnetEnv("subnet.env", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestDelegateConfig(t *testing.T) {
	tests := []struct {
		name string
		conf string
		env  string
		want string
	}{{
		name: "kube-flannel conflist",
		conf: kubeFlannelConf,
		env:  subnetEnvV4,
		want: `{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}`,
	}, {
		name: "minimal, agent not masquerading",
		conf: `{"name":"mynet","type":"flannel"}`,
		env:  strings.Replace(subnetEnvV4, "IPMASQ=true", "IPMASQ=false", 1),
		want: `{"ipMasq":true,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1450,"name":"mynet","type":"bridge"}`,
	}, {
		name: "delegate keys win",
		conf: `{"name":"n","type":"flannel","delegate":{"bridge":"mynet0","mtu":1400,"ipMasq":true,"isGateway":false}}`,
		env:  subnetEnvV4,
		want: `{"bridge":"mynet0","ipMasq":true,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isGateway":false,"mtu":1400,"name":"n","type":"bridge"}`,
	}, {
		name: "other delegate type gets no isGateway",
		conf: `{"name":"n","type":"flannel","delegate":{"type":"ipvlan","master":"eth0"}}`,
		env:  subnetEnvV4,
		want: `{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"master":"eth0","mtu":1450,"name":"n","type":"ipvlan"}`,
	}, {
		name: "ipam base kept, routes extended",
		conf: `{"name":"n","type":"flannel","ipam":{"dataDir":"/tmp/x","ranges":"replaced","routes":[{"dst":"192.0.2.0/24","gw":"10.244.1.1"}]}}`,
		env:  subnetEnvV4,
		want: `{"ipMasq":false,"ipam":{"dataDir":"/tmp/x","ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"192.0.2.0/24","gw":"10.244.1.1"},{"dst":"10.244.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1450,"name":"n","type":"bridge"}`,
	}, {
		name: "dual stack",
		conf: `{"cniVersion":"1.0.0","name":"n","type":"flannel","runtimeConfig":{"portMappings":[]}}`,
		env:  subnetEnvDual,
		want: `{"cniVersion":"1.0.0","ipMasq":true,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}],[{"subnet":"2001:db8:44:1::/64"}]],"routes":[{"dst":"10.244.0.0/16"},{"dst":"2001:db8:44::/56"}],"type":"host-local"},"isGateway":true,"mtu":1400,"name":"n","runtimeConfig":{"portMappings":[]},"type":"bridge"}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNetConf([]byte(tt.conf))
			if err != nil {
				t.Fatal(err)
			}
			d, err := DelegateConfig(n, mustEnv(t, tt.env))
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("delegate configuration\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestDelegateConfigErrors(t *testing.T) {
	tests := []struct {
		name, conf, wantErr string
	}{
		{"delegate name", `{"name":"n","delegate":{"name":"x"}}`, "delegate.name"},
		{"delegate ipam", `{"name":"n","delegate":{"ipam":{}}}`, "delegate.ipam"},
		{"delegate type not a string", `{"name":"n","delegate":{"type":5}}`, "delegate.type 5"},
		{"route dst", `{"name":"n","ipam":{"routes":[{"dst":"10.0.0.300/8"}]}}`, `ipam.routes[0].dst "10.0.0.300/8"`},
		{"route gw", `{"name":"n","ipam":{"routes":[{"dst":"10.0.0.0/8","gw":"x"}]}}`, `ipam.routes[0].gw "x"`},
		{"routes not a list", `{"name":"n","ipam":{"routes":{"dst":"10.0.0.0/8"}}}`, `ipam.routes {"dst"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNetConf([]byte(tt.conf))
			if err != nil {
				t.Fatal(err)
			}
			_, err = DelegateConfig(n, mustEnv(t, subnetEnvV4))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseSubnetEnvMissing(t *testing.T) {
	tests := []struct {
		name, data, wantErr string
	}{
		{"empty", "", "missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ"},
		{"no ipmasq", "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\n", "missing FLANNEL_IPMASQ"},
		{"no mtu", "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPMASQ=false\n", "missing FLANNEL_MTU"},
		{"bad subnet", "FLANNEL_SUBNET=10.244.1.1\n", `FLANNEL_SUBNET "10.244.1.1"`},
		{"v6 only is enough", "FLANNEL_IPV6_NETWORK=2001:db8::/48\nFLANNEL_IPV6_SUBNET=2001:db8:0:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseSubnetEnv("subnet.env", []byte(tt.data))
			errtest.Check(t, err, tt.wantErr)
		})
	}
}
