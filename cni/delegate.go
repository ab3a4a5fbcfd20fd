package cni

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"

	"github.com/overlayd/overlayd/subnet"
)

// defaultDelegate is the plugin delegated to when delegate.type is unset.
const defaultDelegate = "bridge"

// route is a CNI route as the ipam section carries it.
type route struct {
	Dst      string `json:"dst"`
	GW       string `json:"gw,omitempty"`
	MTU      int    `json:"mtu,omitempty"`
	AdvMSS   int    `json:"advmss,omitempty"`
	Priority int    `json:"priority,omitempty"`
	Table    *int   `json:"table,omitempty"`
	Scope    *int   `json:"scope,omitempty"`
}

// DelegateConfig renders the delegate's configuration from the plugin's
// configuration and the subnet file: name from the network, type bridge,
// ipMasq the opposite of FLANNEL_IPMASQ (the agent masquerades, or the
// delegate must), mtu FLANNEL_MTU, isGateway for bridge, cniVersion from
// the network, and host-local IPAM over the node's subnet with a route to
// the overlay network. Keys set in n.Delegate win over the defaults.
func DelegateConfig(n NetConf, env subnet.SubnetEnv) (map[string]any, error) {
	if err := n.checkDelegate(); err != nil {
		return nil, err
	}
	d := maps.Clone(n.Delegate)
	if d == nil {
		d = map[string]any{}
	}
	d["name"] = n.Name
	setDefault(d, "type", defaultDelegate)
	setDefault(d, "ipMasq", !env.IPMasq)
	setDefault(d, "mtu", env.MTU)
	if d["type"] == defaultDelegate {
		setDefault(d, "isGateway", true)
	}
	if n.CNIVersion != "" {
		d["cniVersion"] = n.CNIVersion
	}
	if n.RuntimeConfig != nil {
		d["runtimeConfig"] = n.RuntimeConfig
	}
	ipam, err := delegateIPAM(n.IPAM, env)
	if err != nil {
		return nil, err
	}
	d["ipam"] = ipam
	return d, nil
}

func setDefault(m map[string]any, key string, v any) {
	if _, ok := m[key]; !ok {
		m[key] = v
	}
}

// delegateIPAM keeps the configured ipam keys, defaults type to
// host-local, sets one range per family to the node's subnet and appends
// a route to each overlay network to the configured routes.
func delegateIPAM(base map[string]any, env subnet.SubnetEnv) (map[string]any, error) {
	ipam := maps.Clone(base)
	if ipam == nil {
		ipam = map[string]any{}
	}
	setDefault(ipam, "type", "host-local")
	var ranges [][]map[string]string
	for _, sn := range []netip.Prefix{env.Subnet, env.IPv6Subnet} {
		if sn.IsValid() {
			ranges = append(ranges, []map[string]string{{"subnet": sn.Masked().String()}})
		}
	}
	ipam["ranges"] = ranges
	routes, err := ipamRoutes(ipam)
	if err != nil {
		return nil, err
	}
	for _, nw := range []netip.Prefix{env.Network, env.IPv6Network} {
		if nw.IsValid() {
			routes = append(routes, route{Dst: nw.String()})
		}
	}
	ipam["routes"] = routes
	return ipam, nil
}

// ipamRoutes decodes and checks the configured ipam.routes.
func ipamRoutes(ipam map[string]any) ([]route, error) {
	routes := []route{}
	raw, ok := ipam["routes"]
	if !ok {
		return routes, nil
	}
	buf, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("ipam.routes: %w", err)
	}
	if err := json.Unmarshal(buf, &routes); err != nil {
		return nil, fmt.Errorf("ipam.routes %s: %w", truncate(buf), err)
	}
	for i, r := range routes {
		if _, err := netip.ParsePrefix(r.Dst); err != nil {
			return nil, fmt.Errorf("ipam.routes[%d].dst %q: not a CIDR", i, r.Dst)
		}
		if r.GW != "" {
			if _, err := netip.ParseAddr(r.GW); err != nil {
				return nil, fmt.Errorf("ipam.routes[%d].gw %q: not an IP address", i, r.GW)
			}
		}
	}
	return routes, nil
}

func truncate(b []byte) string {
	const limit = 120
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
