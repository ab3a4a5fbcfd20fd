package doctor

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

const groupKernel = "kernel"

// checkKernel: the vxlan module, ip_forward, br_netfilter with
// bridge-nf-call-iptables when kube-proxy is present, rp_filter.
func checkKernel(_ context.Context, e *Env, f *facts, r *Report) {
	r.add(checkModule(e, f))
	r.add(checkSysctlIs(e, "ip_forward", "net.ipv4.ip_forward", "1",
		"pods on other nodes are unreachable: the kernel does not forward between flannel.<VNI> and cni0"))
	r.add(checkBridgeNF(e, f))
	for _, res := range checkRPFilter(e, f) {
		r.add(res)
	}
}

func checkModule(e *Env, f *facts) Result {
	res := Result{Group: groupKernel, Check: "vxlan module", Fix: "modprobe vxlan (or overlayd doctor --fix)"}
	if f.device != nil {
		res.Status, res.Detail = OK, f.device.Name+" exists, so the kernel has VXLAN"
		return res
	}
	if e.Modules == nil {
		res.Status, res.Detail = Skip, "cannot read /sys/module here"
		return res
	}
	loaded, err := e.Modules.Loaded("vxlan")
	switch {
	case err != nil:
		res.Status, res.Detail = Warn, fmt.Sprintf("cannot tell whether vxlan is loaded: %v", err)
	case loaded:
		res.Status, res.Detail = OK, "vxlan is loaded (no "+f.deviceName()+" yet: overlayd creates it)"
	default:
		res.Status, res.Detail = Fail, "the vxlan module is not loaded and "+f.deviceName()+" does not exist"
		fixModule(e, &res, "vxlan")
	}
	return res
}

func fixModule(e *Env, res *Result, name string) {
	if !e.Opts.Fix || e.Modules == nil {
		return
	}
	if err := e.Modules.Load(name); err != nil {
		res.Changed = fmt.Sprintf("modprobe %s failed: %v", name, err)
		return
	}
	res.Changed = "loaded module " + name
	res.Status = OK
}

// checkSysctlIs: name must read want; --fix writes it.
func checkSysctlIs(e *Env, check, name, want, why string) Result {
	res := Result{Group: groupKernel, Check: check, Fix: fmt.Sprintf("sysctl -w %s=%s (or overlayd doctor --fix)", name, want)}
	if e.Sysctl == nil {
		res.Status, res.Detail = Skip, "cannot read sysctls here"
		return res
	}
	got, err := e.Sysctl.Get(name)
	if err != nil {
		res.Status, res.Detail = Warn, fmt.Sprintf("cannot read %s: %v", name, err)
		return res
	}
	if got == want {
		res.Status, res.Detail = OK, fmt.Sprintf("%s = %s", name, got)
		return res
	}
	res.Status, res.Detail = Fail, fmt.Sprintf("%s = %s: %s", name, got, why)
	fixSysctl(e, &res, name, got, want)
	return res
}

func fixSysctl(e *Env, res *Result, name, was, want string) {
	if !e.Opts.Fix {
		return
	}
	if err := e.Sysctl.Set(name, want); err != nil {
		res.Changed = fmt.Sprintf("setting %s=%s failed: %v", name, want, err)
		return
	}
	res.Changed = fmt.Sprintf("%s: %s -> %s", name, was, want)
	res.Status = OK
}

func checkBridgeNF(e *Env, f *facts) Result {
	res := Result{Group: groupKernel, Check: "br_netfilter",
		Fix: "modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1 (or overlayd doctor --fix)"}
	if !f.kubeProxy {
		res.Status, res.Detail = OK, "kube-proxy's chains are absent: bridged pod traffic need not pass iptables"
		return res
	}
	if e.Modules != nil {
		if loaded, err := e.Modules.Loaded("br_netfilter"); err == nil && !loaded {
			res.Status, res.Detail = Fail, "kube-proxy runs but br_netfilter is not loaded: Service traffic between pods on one node skips its rules"
			fixModule(e, &res, "br_netfilter")
			if res.Status != OK {
				return res
			}
		}
	}
	if e.Sysctl == nil {
		res.Status, res.Detail = Skip, "cannot read sysctls here"
		return res
	}
	const name = "net.bridge.bridge-nf-call-iptables"
	got, err := e.Sysctl.Get(name)
	switch {
	case err != nil:
		res.Status, res.Detail = Fail, fmt.Sprintf("kube-proxy runs but %s cannot be read: %v", name, err)
	case strings.TrimSpace(got) == "1":
		res.Status, res.Detail = OK, name+" = 1"
	default:
		res.Status, res.Detail = Fail, fmt.Sprintf("%s = %s: bridged pod traffic skips kube-proxy's rules", name, got)
		fixSysctl(e, &res, name, got, "1")
	}
	return res
}

// checkRPFilter: strict reverse-path filtering (1) on the devices VXLAN
// and pod traffic use drops packets whose return route is elsewhere; the
// kernel uses the larger of conf.all and conf.<dev>.
func checkRPFilter(e *Env, f *facts) []Result {
	if e.Sysctl == nil {
		return []Result{{Group: groupKernel, Check: "rp_filter", Status: Skip, Detail: "cannot read sysctls here"}}
	}
	all, _ := e.Sysctl.Get("net.ipv4.conf.all.rp_filter")
	var out []Result
	for _, dev := range f.rpDevices(e) {
		name := "net.ipv4.conf." + dev + ".rp_filter"
		v, err := e.Sysctl.Get(name)
		if err != nil {
			continue // the device does not exist (yet)
		}
		res := Result{Group: groupKernel, Check: "rp_filter " + dev, Status: OK,
			Detail: fmt.Sprintf("%s = %s (all = %s)", name, v, all)}
		if v == "1" || all == "1" {
			res.Status = Warn
			res.Detail = fmt.Sprintf("strict reverse-path filter on %s (%s = %s, all = %s): packets arriving where their return route does not point are dropped", dev, name, v, all)
			res.Fix = fmt.Sprintf("sysctl -w %s=2 net.ipv4.conf.all.rp_filter=2 (loose; or overlayd doctor --fix)", name)
			fixRPFilter(e, &res, name, v, all)
		}
		out = append(out, res)
	}
	return out
}

func fixRPFilter(e *Env, res *Result, name, v, all string) {
	if !e.Opts.Fix {
		return
	}
	var changes []string
	for _, s := range []struct{ name, was string }{{name, v}, {"net.ipv4.conf.all.rp_filter", all}} {
		if s.was != "1" {
			continue
		}
		if err := e.Sysctl.Set(s.name, "2"); err != nil {
			res.Changed = fmt.Sprintf("setting %s=2 failed: %v", s.name, err)
			return
		}
		changes = append(changes, s.name+": 1 -> 2")
	}
	res.Changed, res.Status = strings.Join(changes, ", "), OK
}

// rpDevices: the underlay interface, flannel.<VNI>, cni0 (those that exist).
func (f *facts) rpDevices(e *Env) []string {
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[n] && f.link(n) != nil {
			seen[n] = true
			out = append(out, n)
		}
	}
	add(e.Opts.Iface)
	if s := e.Status; s != nil {
		add(s.Underlay.Iface)
	}
	add(f.ifaceOf(f.bind))
	add(f.deviceName())
	add("cni0")
	return out
}

// ifaceOf is the link holding addr.
func (f *facts) ifaceOf(addr netip.Addr) string {
	for _, l := range f.links {
		for _, a := range l.Addrs {
			if a.Addr() == addr {
				return l.Name
			}
		}
	}
	return ""
}
