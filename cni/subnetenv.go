package cni

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/overlayd/overlayd/subnet"
)

// readSubnetEnv reads the agent's subnet file with the daemon's own parser
// and requires what the delegate configuration is made of: a network and
// a subnet (IPv4 or IPv6), FLANNEL_MTU and FLANNEL_IPMASQ.
func readSubnetEnv(path string) (subnet.SubnetEnv, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return subnet.SubnetEnv{}, fmt.Errorf("subnet file: %w", err)
	}
	return parseSubnetEnv(path, data)
}

func parseSubnetEnv(path string, data []byte) (subnet.SubnetEnv, error) {
	env, err := subnet.ParseSubnetFile(data)
	if err != nil {
		return subnet.SubnetEnv{}, fmt.Errorf("subnet file %s: %w", path, err)
	}
	if missing := missingKeys(env, data); len(missing) > 0 {
		return subnet.SubnetEnv{}, fmt.Errorf("subnet file %s: missing %s", path, strings.Join(missing, ", "))
	}
	return env, nil
}

func missingKeys(env subnet.SubnetEnv, data []byte) []string {
	var m []string
	if !env.Network.IsValid() && !env.IPv6Network.IsValid() {
		m = append(m, "FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK")
	}
	if !env.Subnet.IsValid() && !env.IPv6Subnet.IsValid() {
		m = append(m, "FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET")
	}
	if env.MTU == 0 {
		m = append(m, "FLANNEL_MTU")
	}
	if !hasKey(data, "FLANNEL_IPMASQ") {
		m = append(m, "FLANNEL_IPMASQ")
	}
	return m
}

// hasKey reports whether a KEY=VALUE line sets key; the parser leaves a
// false boolean indistinguishable from an absent one.
func hasKey(data []byte, key string) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, _, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok && strings.TrimSpace(k) == key {
			return true
		}
	}
	return false
}
