package cni

import (
	"encoding/json"
	"testing"
)

// FuzzDelegateConfig feeds arbitrary configurations and subnet files: a
// pair that parses must render a delegate configuration that encodes and
// carries the network's name and the node's subnet.
func FuzzDelegateConfig(f *testing.F) {
	for _, s := range []struct{ conf, env string }{
		{kubeFlannelConf, subnetEnvV4},
		{`{"name":"n","delegate":{"type":"ipvlan"},"ipam":{"routes":[{"dst":"192.0.2.0/24"}]}}`, subnetEnvDual},
		{`{"name":"n","delegate":{"name":"x"}}`, subnetEnvV4},
		{`{"name":"n","ipam":{"routes":null}}`, "FLANNEL_IPV6_NETWORK=2001:db8::/48\nFLANNEL_IPV6_SUBNET=2001:db8:0:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"},
		{`null`, ""},
	} {
		f.Add([]byte(s.conf), []byte(s.env))
	}
	f.Fuzz(func(t *testing.T, conf, envData []byte) {
		n, err := ParseNetConf(conf)
		if err != nil {
			return
		}
		env, err := parseSubnetEnv("subnet.env", envData)
		if err != nil {
			return
		}
		d, err := DelegateConfig(n, env)
		if err != nil {
			return
		}
		if _, err := json.Marshal(d); err != nil {
			t.Fatalf("delegate configuration does not encode: %v", err)
		}
		if d["name"] != n.Name {
			t.Fatalf("delegate name %v, want %q", d["name"], n.Name)
		}
		if _, ok := d["type"].(string); !ok {
			t.Fatalf("delegate type %v is not a string", d["type"])
		}
		ranges := d["ipam"].(map[string]any)["ranges"].([][]map[string]string)
		if env.Subnet.IsValid() && ranges[0][0]["subnet"] != env.Subnet.Masked().String() {
			t.Fatalf("first range %v, want %s", ranges[0], env.Subnet.Masked())
		}
	})
}
