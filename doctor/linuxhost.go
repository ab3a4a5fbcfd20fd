package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	goipt "github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ProcSysctls reads /proc/sys under Root ("/" on a host). Sysctls are
// per network namespace for net.*: run doctor inside the node's.
type ProcSysctls struct{ Root string }

// Get reads a sysctl.
func (p ProcSysctls) Get(name string) (string, error) {
	b, err := os.ReadFile(p.path(name))
	if err != nil {
		return "", fmt.Errorf("sysctl %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Set writes a sysctl.
func (p ProcSysctls) Set(name, value string) error {
	if err := os.WriteFile(p.path(name), []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// path maps the dotted name to its file; a device name inside
// net.ipv4.conf.<dev>.<key> may itself hold dots (flannel.1).
func (p ProcSysctls) path(name string) string {
	const conf = "net.ipv4.conf."
	rel := strings.ReplaceAll(name, ".", "/")
	if rest, ok := strings.CutPrefix(name, conf); ok {
		if i := strings.LastIndexByte(rest, '.'); i > 0 {
			rel = "net/ipv4/conf/" + rest[:i] + "/" + rest[i+1:]
		}
	}
	return filepath.Join(p.Root, "proc/sys", rel)
}

// SysModules reads /sys/module under Root and loads with modprobe.
type SysModules struct{ Root string }

// Loaded reports whether /sys/module/<name> exists (loaded or built in).
func (m SysModules) Loaded(name string) (bool, error) {
	_, err := os.Stat(filepath.Join(m.Root, "sys/module", name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Load runs modprobe.
func (m SysModules) Load(name string) error {
	if out, err := exec.Command("modprobe", name).CombinedOutput(); err != nil {
		return fmt.Errorf("modprobe %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NewIPTables is the iptables in use (go-iptables).
func NewIPTables() (IPTables, error) {
	return goipt.New(goipt.IPFamily(goipt.ProtocolIPv4), goipt.Timeout(10))
}

// ExecBackends runs iptables-legacy-save and iptables-nft-save.
type ExecBackends struct{}

// Save runs iptables-<backend>-save; ok is false when it is not installed.
func (ExecBackends) Save(backend string) (string, bool, error) {
	bin := "iptables-" + backend + "-save"
	if _, err := exec.LookPath(bin); err != nil {
		return "", false, nil
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		return "", true, fmt.Errorf("%s: %w", bin, err)
	}
	return string(out), true, nil
}

// InUse reads `iptables --version` ("iptables v1.8.9 (nf_tables)").
func (ExecBackends) InUse() (string, error) {
	out, err := exec.Command("iptables", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("iptables --version: %w", err)
	}
	if strings.Contains(string(out), "nf_tables") {
		return "nft", nil
	}
	return "legacy", nil
}

// NetlinkNet reads links and routes over netlink.
type NetlinkNet struct{ H *netlink.Handle }

// Links lists every link with its IPv4 addresses.
func (n NetlinkNet) Links() ([]Link, error) {
	links, err := n.H.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make([]Link, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		lk := Link{Name: a.Name, MTU: a.MTU, Up: a.Flags&unix.IFF_UP != 0}
		addrs, err := n.H.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", a.Name, err)
		}
		for _, ad := range addrs {
			if p, ok := prefixOf(ad.IPNet.IP, ad.IPNet.Mask); ok {
				lk.Addrs = append(lk.Addrs, p)
			}
		}
		if v, ok := l.(*netlink.Vxlan); ok {
			local, _ := netip.AddrFromSlice(v.SrcAddr)
			lk.VXLAN = &VXLANInfo{VNI: v.VxlanId, Local: local.Unmap(), Port: v.Port}
		}
		out = append(out, lk)
	}
	return out, nil
}

func prefixOf(ip []byte, mask []byte) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	ones := 0
	for _, b := range mask {
		for ; b != 0; b <<= 1 {
			ones++
		}
	}
	a = a.Unmap()
	if len(mask) == 16 && a.Is4() {
		ones -= 96
	}
	return netip.PrefixFrom(a, ones), true
}

// Routes lists the main table's IPv4 routes.
func (n NetlinkNet) Routes() ([]Route, error) {
	routes, err := n.H.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	names := map[int]string{}
	out := make([]Route, 0, len(routes))
	for _, r := range routes {
		rt := Route{Type: routeType(r.Type)}
		if r.Dst != nil {
			rt.Dst, _ = prefixOf(r.Dst.IP, r.Dst.Mask)
		} else {
			rt.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		if via, ok := netip.AddrFromSlice(r.Gw); ok {
			rt.Via = via.Unmap()
		}
		rt.Dev = n.linkName(names, r.LinkIndex)
		out = append(out, rt)
	}
	return out, nil
}

func (n NetlinkNet) linkName(cache map[int]string, index int) string {
	if index == 0 {
		return ""
	}
	if name, ok := cache[index]; ok {
		return name
	}
	l, err := n.H.LinkByIndex(index)
	if err != nil {
		return fmt.Sprintf("if%d", index)
	}
	cache[index] = l.Attrs().Name
	return cache[index]
}

func routeType(t int) string {
	switch t {
	case unix.RTN_BLACKHOLE:
		return "blackhole"
	case unix.RTN_UNREACHABLE:
		return "unreachable"
	case unix.RTN_PROHIBIT:
		return "prohibit"
	case unix.RTN_LOCAL:
		return "local"
	}
	return "unicast"
}

// RouteTo asks the kernel which route it uses for dst.
func (n NetlinkNet) RouteTo(dst netip.Addr) (Route, error) {
	rs, err := n.H.RouteGet(dst.AsSlice())
	if err != nil {
		return Route{}, fmt.Errorf("route to %s: %w", dst, err)
	}
	if len(rs) == 0 {
		return Route{}, fmt.Errorf("route to %s: none", dst)
	}
	if rs[0].Type == unix.RTN_UNREACHABLE || rs[0].Type == unix.RTN_BLACKHOLE || rs[0].Type == unix.RTN_PROHIBIT {
		return Route{}, fmt.Errorf("route to %s: %s", dst, routeType(rs[0].Type))
	}
	return Route{Dev: n.linkName(map[int]string{}, rs[0].LinkIndex), Type: routeType(rs[0].Type)}, nil
}
