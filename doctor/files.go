package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

const groupFiles = "files"

// checkFiles: the subnet file, the CNI config and plugins, cni0's
// address, and stale routes for the pod network.
func checkFiles(_ context.Context, e *Env, f *facts, r *Report) {
	r.add(checkSubnetFile(e, f))
	for _, res := range checkCNI(e) {
		r.add(res)
	}
	r.add(checkCNI0(f))
	r.add(checkStaleRoutes(e, f))
}

func checkSubnetFile(e *Env, f *facts) Result {
	p := e.Opts.SubnetFile
	res := Result{Group: groupFiles, Check: "subnet file", Fix: "restart overlayd: it writes " + p + " at start"}
	switch {
	case errors.Is(f.envErr, fs.ErrNotExist):
		res.Status = Fail
		res.Detail = fmt.Sprintf("%s is missing: every pod sandbox fails with \"open %s: no such file or directory\"", p, p)
		return res
	case f.envErr != nil:
		res.Status, res.Detail = Fail, fmt.Sprintf("%s is unreadable: %v", p, f.envErr)
		return res
	}
	var wrong []string
	if f.own.IsValid() && f.env.Subnet.Masked() != f.own {
		wrong = append(wrong, fmt.Sprintf("FLANNEL_SUBNET is in %s but the lease is %s", f.env.Subnet, f.own))
	}
	if n := f.network(); n.IsValid() && f.env.Network != n {
		wrong = append(wrong, fmt.Sprintf("FLANNEL_NETWORK %s but the network is %s", f.env.Network, n))
	}
	if f.device != nil && f.env.MTU != f.device.MTU {
		wrong = append(wrong, fmt.Sprintf("FLANNEL_MTU %d but %s has MTU %d", f.env.MTU, f.device.Name, f.device.MTU))
	}
	if len(wrong) > 0 {
		res.Status, res.Detail = Fail, p+" is stale: "+strings.Join(wrong, "; ")
		return res
	}
	res.Status, res.Detail = OK, fmt.Sprintf("%s: subnet %s, network %s, MTU %d", p, f.env.Subnet, f.env.Network, f.env.MTU)
	return res
}

// checkCNI: a conflist using the flannel plugin, and every plugin it
// names present in the plugin directory.
func checkCNI(e *Env) []Result {
	conf := Result{Group: groupFiles, Check: "cni config"}
	if e.FS == nil || e.Opts.CNIConfDir == "" {
		conf.Status, conf.Detail = Skip, "no CNI config directory given"
		return []Result{conf}
	}
	name, types, err := findFlannelConf(e.FS, e.Opts.CNIConfDir)
	if err != nil {
		conf.Status, conf.Detail = Warn, err.Error()
		conf.Fix = "install kube-flannel's 10-flannel.conflist in " + e.Opts.CNIConfDir + " (not needed on a host without a kubelet)"
		return []Result{conf}
	}
	conf.Status, conf.Detail = OK, fmt.Sprintf("%s uses the flannel plugin (%s)", name, strings.Join(types, ", "))
	bins := Result{Group: groupFiles, Check: "cni plugins", Status: OK}
	var missing []string
	for _, t := range types {
		st, err := fs.Stat(e.FS, fsPath(path.Join(e.Opts.CNIBinDir, t)))
		if err != nil || st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		bins.Status = Fail
		bins.Detail = fmt.Sprintf("missing or not executable in %s: %s", e.Opts.CNIBinDir, strings.Join(missing, ", "))
		bins.Fix = "install containernetworking-plugins and link overlayd as " + path.Join(e.Opts.CNIBinDir, "flannel")
	} else {
		bins.Detail = "all present in " + e.Opts.CNIBinDir
	}
	return []Result{conf, bins}
}

// findFlannelConf returns the first config file (in the order the
// kubelet reads them) whose plugins include flannel, and the plugin types
// it needs: its own, the delegate's (bridge by default) and the IPAM
// (host-local).
func findFlannelConf(fsys fs.FS, dir string) (string, []string, error) {
	entries, err := fs.ReadDir(fsys, fsPath(dir))
	if err != nil {
		return "", nil, fmt.Errorf("no CNI config: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, en := range entries {
		if n := en.Name(); strings.HasSuffix(n, ".conflist") || strings.HasSuffix(n, ".conf") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := fs.ReadFile(fsys, fsPath(path.Join(dir, n)))
		if err != nil {
			continue
		}
		if types := flannelTypes(data); types != nil {
			return path.Join(dir, n), types, nil
		}
	}
	return "", nil, fmt.Errorf("no config in %s uses the flannel plugin (%d files)", dir, len(names))
}

type cniPlugin struct {
	Type     string `json:"type"`
	Delegate *struct {
		Type string `json:"type"`
	} `json:"delegate"`
}

func flannelTypes(data []byte) []string {
	var list struct {
		cniPlugin
		Plugins []cniPlugin `json:"plugins"`
	}
	if json.Unmarshal(data, &list) != nil {
		return nil
	}
	plugins := list.Plugins
	if len(plugins) == 0 {
		plugins = []cniPlugin{list.cniPlugin}
	}
	var types []string
	found := false
	for _, p := range plugins {
		if p.Type == "" {
			continue
		}
		types = append(types, p.Type)
		if p.Type == "flannel" {
			found = true
			delegate := "bridge"
			if p.Delegate != nil && p.Delegate.Type != "" {
				delegate = p.Delegate.Type
			}
			types = append(types, delegate, "host-local")
		}
	}
	if !found {
		return nil
	}
	return types
}

func checkCNI0(f *facts) Result {
	res := Result{Group: groupFiles, Check: "cni0 address"}
	l := f.link("cni0")
	switch {
	case l == nil:
		res.Status, res.Detail = OK, "no cni0 yet (the bridge plugin creates it with the first pod)"
		return res
	case !f.own.IsValid():
		res.Status, res.Detail = Skip, "this node's subnet is unknown"
		return res
	}
	var stale []string
	for _, a := range l.Addrs {
		if a.Addr().Is4() && !f.own.Contains(a.Addr()) {
			stale = append(stale, a.String())
		}
	}
	if len(stale) > 0 {
		res.Status = Fail
		res.Detail = fmt.Sprintf("cni0 has %s, outside this node's subnet %s (left from an earlier lease): new pods fail with \"cni0 already has an IP address different from\"", strings.Join(stale, ", "), f.own)
		res.Fix = "ip link delete cni0 (the bridge plugin recreates it; restart the pods of this node)"
		return res
	}
	res.Status, res.Detail = OK, fmt.Sprintf("cni0 addresses inside %s", f.own)
	return res
}

// checkStaleRoutes: a route for part of the pod network on a device other
// than flannel.<VNI> and cni0 takes that traffic off the overlay.
func checkStaleRoutes(e *Env, f *facts) Result {
	res := Result{Group: groupFiles, Check: "pod network routes"}
	network := f.network()
	if e.Net == nil || !network.IsValid() {
		res.Status, res.Detail = Skip, "pod network or routes unknown"
		return res
	}
	routes, err := e.Net.Routes()
	if err != nil {
		res.Status, res.Detail = Warn, fmt.Sprintf("cannot list routes: %v", err)
		return res
	}
	var stale []string
	for _, rt := range routes {
		if !rt.Dst.Overlaps(network) || rt.Dst.Bits() == 0 || rt.Dev == f.deviceName() || rt.Dev == "cni0" {
			continue
		}
		if rt.Type == "blackhole" && rt.Dst == f.own {
			continue // --ip-blackhole-route
		}
		stale = append(stale, describeRoute(rt))
	}
	if len(stale) > 0 {
		res.Status = Fail
		res.Detail = "routes for the pod network off the overlay: " + strings.Join(stale, "; ")
		res.Fix = "ip route del " + strings.Fields(stale[0])[0] + " (left by an earlier network setup)"
		return res
	}
	res.Status, res.Detail = OK, fmt.Sprintf("every route into %s uses %s or cni0", network, f.deviceName())
	return res
}

func describeRoute(rt Route) string {
	s := rt.Dst.String()
	if rt.Via.IsValid() {
		s += " via " + rt.Via.String()
	}
	if rt.Dev != "" {
		s += " dev " + rt.Dev
	}
	if rt.Type != "" && rt.Type != "unicast" {
		s += " (" + rt.Type + ")"
	}
	return s
}
