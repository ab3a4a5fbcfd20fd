package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// DefaultCNIPluginDir is where Debian's containernetworking-plugins puts
// the bridge, host-local, portmap and loopback plugins.
const DefaultCNIPluginDir = "/usr/lib/cni"

// The pods' network: kube-flannel's conflist name and version.
const (
	cniNetwork = "cbr0"
	cniVersion = "0.3.1"
	podIfName  = "eth0"
)

// cniPlugins is the node's conflist as kube-flannel installs it (flannel
// delegating to bridge with hairpin mode and a default route, then
// portmap), with the flannel plugin's state and host-local's leases moved
// into the node's directory so that nothing lands in the host's
// /var/lib/cni.
func cniPlugins(n *Node, ports []PortMapping) []map[string]any {
	state := filepath.Join(n.Dir, "cni")
	if ports == nil {
		ports = []PortMapping{}
	}
	return []map[string]any{{
		"type":       "flannel",
		"delegate":   map[string]any{"hairpinMode": true, "isDefaultGateway": true},
		"subnetFile": n.SubnetFile,
		"dataDir":    filepath.Join(state, "flannel"),
		"ipam":       map[string]any{"dataDir": filepath.Join(state, "networks")},
	}, {
		"type":          "portmap",
		"capabilities":  map[string]any{"portMappings": true},
		"runtimeConfig": map[string]any{"portMappings": ports},
	}}
}

// PortMapping is a pod's hostPort, as the kubelet passes it to the
// portmap plugin (runtimeConfig.portMappings).
type PortMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"` // "tcp" or "udp"
}

// loopbackConf brings up the pod's lo, as container runtimes do before
// the pod network.
func loopbackConf() map[string]any {
	return map[string]any{"cniVersion": cniVersion, "name": "cni-loopback", "type": "loopback"}
}

// cniPath makes <WorkDir>/cni-bin/flannel, a symlink to Options.CNIPlugin
// (overlayd acting as the flannel plugin under that name), and returns
// CNI_PATH: that directory, then Options.CNIPluginDir.
func (l *Lab) cniPath() (string, error) {
	if l.opts.CNIPlugin == "" {
		return "", fmt.Errorf("lab options: CNIPlugin is empty (the overlayd binary that pods are made with)")
	}
	bin, err := filepath.Abs(l.opts.CNIPlugin)
	if err != nil {
		return "", fmt.Errorf("lab options: CNIPlugin %q: %w", l.opts.CNIPlugin, err)
	}
	dir := filepath.Join(l.WorkDir, "cni-bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("CNI plugin directory: %w", err)
	}
	link := filepath.Join(dir, "flannel")
	if err := os.Symlink(bin, link); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("CNI plugin directory: %w", err)
	}
	return dir + string(os.PathListSeparator) + l.opts.CNIPluginDir, nil
}

// cniCall is one plugin invocation for one pod.
type cniCall struct {
	node    *Node
	command string // ADD or DEL
	id      string // CNI_CONTAINERID
	netns   string // the pod's namespace name
	ifName  string
	path    string // CNI_PATH
}

// exec runs the plugin conf["type"] inside the node's namespace, as the
// kubelet's runtime would on the node, and returns its stdout.
func (c cniCall) exec(ctx context.Context, conf map[string]any) ([]byte, error) {
	typ, _ := conf["type"].(string)
	plugin, err := findCNIPlugin(typ, c.path)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(conf)
	if err != nil {
		return nil, fmt.Errorf("CNI %s %s: encode configuration: %w", c.command, typ, err)
	}
	cmd := netnsutil.Command(ctx, c.node.NS, plugin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"CNI_COMMAND=" + c.command,
		"CNI_CONTAINERID=" + c.id,
		"CNI_NETNS=/run/netns/" + c.netns,
		"CNI_IFNAME=" + c.ifName,
		"CNI_PATH=" + c.path,
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(data), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("CNI %s %s for %s in %s: %w: %s %s", c.command, typ, c.id, c.node.Name, err,
			bytes.TrimSpace(stdout.Bytes()), bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

func findCNIPlugin(typ, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, typ)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("CNI plugin %q not in %s (install containernetworking-plugins: scripts/deps.sh)", typ, path)
}

// chainConf is a conflist entry as a runtime passes it: the list's name
// and version, and the previous plugin's result when there is one.
func chainConf(plugin map[string]any, prevResult []byte) map[string]any {
	conf := map[string]any{"name": cniNetwork, "cniVersion": cniVersion}
	for k, v := range plugin {
		conf[k] = v
	}
	if prevResult != nil {
		conf["prevResult"] = json.RawMessage(prevResult)
	}
	return conf
}

// cniAdd runs loopback, then the chain, and returns the chain's result.
func (c cniCall) add(ctx context.Context, plugins []map[string]any) ([]byte, error) {
	lo := c
	lo.ifName = "lo"
	if _, err := lo.exec(ctx, loopbackConf()); err != nil {
		return nil, err
	}
	var result []byte
	for _, p := range plugins {
		out, err := c.exec(ctx, chainConf(p, result))
		if err != nil {
			return nil, err
		}
		result = out
	}
	return result, nil
}

// del runs the chain backwards with the ADD result, then loopback.
func (c cniCall) del(ctx context.Context, plugins []map[string]any, result []byte) error {
	for i := len(plugins) - 1; i >= 0; i-- {
		if _, err := c.exec(ctx, chainConf(plugins[i], result)); err != nil {
			return err
		}
	}
	lo := c
	lo.ifName = "lo"
	_, err := lo.exec(ctx, loopbackConf())
	return err
}

// resultIPs are the first IPv4 and the first IPv6 address of a CNI 0.3+
// result; it must have at least one.
func resultIPs(result []byte) (v4, v6 netip.Addr, err error) {
	var r struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		return v4, v6, fmt.Errorf("CNI result %q: %w", strings.TrimSpace(string(result)), err)
	}
	for _, ip := range r.IPs {
		p, err := netip.ParsePrefix(ip.Address)
		switch {
		case err != nil:
		case p.Addr().Is4() && !v4.IsValid():
			v4 = p.Addr()
		case p.Addr().Is6() && !v6.IsValid():
			v6 = p.Addr()
		}
	}
	if !v4.IsValid() && !v6.IsValid() {
		return v4, v6, fmt.Errorf("CNI result %q has no IP address", strings.TrimSpace(string(result)))
	}
	return v4, v6, nil
}
