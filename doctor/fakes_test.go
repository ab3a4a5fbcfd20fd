package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing/fstest"
	"time"

	"github.com/overlayd/overlayd/statusdoc"
	"github.com/overlayd/overlayd/subnet"
)

type fakeSysctls map[string]string

func (f fakeSysctls) Get(n string) (string, error) {
	v, ok := f[n]
	if !ok {
		return "", fmt.Errorf("no sysctl %s", n)
	}
	return v, nil
}
func (f fakeSysctls) Set(n, v string) error { f[n] = v; return nil }

type fakeModules map[string]bool

func (f fakeModules) Loaded(n string) (bool, error) { return f[n], nil }
func (f fakeModules) Load(n string) error           { f[n] = true; return nil }

type fakeIPT map[string][]string // "table/chain" -> -S lines

func (f fakeIPT) ChainExists(t, c string) (bool, error) { _, ok := f[t+"/"+c]; return ok, nil }
func (f fakeIPT) List(t, c string) ([]string, error) {
	l, ok := f[t+"/"+c]
	if !ok {
		return nil, fmt.Errorf("no chain %s/%s", t, c)
	}
	return l, nil
}

type fakeBackends struct {
	inUse string
	saves map[string]string
}

func (f fakeBackends) Save(b string) (string, bool, error) { s, ok := f.saves[b]; return s, ok, nil }
func (f fakeBackends) InUse() (string, error)              { return f.inUse, nil }

type fakeNet struct {
	links  []Link
	routes []Route
}

func (f *fakeNet) Links() ([]Link, error)   { return f.links, nil }
func (f *fakeNet) Routes() ([]Route, error) { return f.routes, nil }
func (f *fakeNet) RouteTo(dst netip.Addr) (Route, error) {
	for _, r := range f.routes {
		if r.Dst.Contains(dst) && r.Type == "unicast" {
			return r, nil
		}
	}
	return Route{}, errors.New("network is unreachable")
}

// fakeProber answers pings to reachable (up to mtu bytes) and echoes from
// responders, reporting seen as our address.
type fakeProber struct {
	reachable map[netip.Addr]bool
	responder map[netip.Addr]bool
	pathMTU   int
	seen      netip.Addr
}

func (f *fakeProber) Ping(_ context.Context, _, dst netip.Addr, size int, df bool) (time.Duration, error) {
	if !f.reachable[dst] || (f.pathMTU > 0 && size > f.pathMTU) {
		return 0, ErrNoReply
	}
	return time.Millisecond, nil
}

func (f *fakeProber) Echo(_ context.Context, _ netip.Addr, dst netip.AddrPort) (time.Duration, netip.AddrPort, error) {
	if !f.responder[dst.Addr()] {
		return 0, netip.AddrPort{}, errors.New("no answer")
	}
	return time.Millisecond, netip.AddrPortFrom(f.seen, 40000), nil
}

type fakeStore struct {
	config []byte
	leases []subnet.Lease
	err    error
}

func (f *fakeStore) GetNetworkConfig(context.Context) ([]byte, error) { return f.config, f.err }
func (f *fakeStore) ListLeases(context.Context) (subnet.LeaseList, error) {
	return subnet.LeaseList{Leases: f.leases}, f.err
}

var (
	now     = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	ownSub  = netip.MustParsePrefix("10.244.1.0/24")
	peerSub = netip.MustParsePrefix("10.244.2.0/24")
	ownIP   = netip.MustParseAddr("192.0.2.10")
	peerIP  = netip.MustParseAddr("192.0.2.11")
)

// healthyEnv is a node where every check passes.
func healthyEnv() *Env {
	conflist := `{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel","delegate":{"hairpinMode":true}},{"type":"portmap"}]}`
	fs := fstest.MapFS{
		"run/flannel/subnet.env":            {Data: []byte("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")},
		"etc/cni/net.d/10-flannel.conflist": {Data: []byte(conflist)},
	}
	for _, p := range []string{"flannel", "bridge", "host-local", "portmap"} {
		fs["opt/cni/bin/"+p] = &fstest.MapFile{Data: []byte("x"), Mode: 0o755}
	}
	return &Env{
		Sysctl: fakeSysctls{
			"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0",
			"net.ipv4.conf.eth0.rp_filter": "0", "net.ipv4.conf.flannel.1.rp_filter": "0",
		},
		Modules: fakeModules{"vxlan": true},
		IPT: fakeIPT{
			"filter/FORWARD":     {"-P FORWARD DROP", "-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD"},
			"filter/FLANNEL-FWD": {"-N FLANNEL-FWD", "-A FLANNEL-FWD -s 10.244.0.0/16 -j ACCEPT"},
			"raw/OUTPUT":         {"-P OUTPUT ACCEPT", "-A OUTPUT -m comment --comment \"overlayd\" -j OVERLAYD-NOTRACK"},
			"nat/POSTROUTING":    {"-P POSTROUTING ACCEPT", "-A POSTROUTING -j FLANNEL-POSTRTG"},
		},
		Backends: fakeBackends{inUse: "nft", saves: map[string]string{"nft": "*filter\n:FLANNEL-FWD - [0:0]\n", "legacy": ""}},
		Net: &fakeNet{
			links: []Link{
				{Name: "lo", MTU: 65536, Up: true},
				{Name: "eth0", MTU: 1500, Up: true, Addrs: []netip.Prefix{netip.PrefixFrom(ownIP, 24)}},
				{Name: "flannel.1", MTU: 1450, Up: true, Addrs: []netip.Prefix{netip.PrefixFrom(ownSub.Addr(), 32)},
					VXLAN: &VXLANInfo{VNI: 1, Local: ownIP, Port: 8472}},
			},
			routes: []Route{
				{Dst: netip.MustParsePrefix("192.0.2.0/24"), Dev: "eth0", Type: "unicast"},
				{Dst: peerSub, Dev: "flannel.1", Via: peerSub.Addr(), Type: "unicast"},
			},
		},
		FS:    fs,
		Probe: &fakeProber{reachable: map[netip.Addr]bool{peerSub.Addr(): true}, responder: map[netip.Addr]bool{peerIP: true}, seen: ownIP},
		Store: &fakeStore{
			config: []byte(`{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}`),
			leases: []subnet.Lease{
				{Subnet: ownSub, Attrs: subnet.LeaseAttrs{PublicIP: ownIP, BackendType: "vxlan"}, Expiration: now.Add(24 * time.Hour)},
				{Subnet: peerSub, Attrs: subnet.LeaseAttrs{PublicIP: peerIP, BackendType: "vxlan"}, Expiration: now.Add(24 * time.Hour)},
			},
		},
		ServerTime: func(context.Context) (time.Time, error) { return now, nil },
		Status: &statusdoc.Doc{
			Ready:    true,
			Underlay: statusdoc.Underlay{Iface: "eth0", Bind: ownIP.String(), Advertise: ownIP.String(), AdvertiseOnHost: true},
			Lease:    &statusdoc.Lease{Subnet: ownSub.String(), Expiration: now.Add(24 * time.Hour)},
			Device: &statusdoc.Device{Name: "flannel.1", MTU: 1450, VNI: 1,
				TxChecksumOffload: &statusdoc.Offload{On: true, Mode: "auto", Why: "kernel has the fix"}},
			Sync:     &statusdoc.Sync{InSync: true, Peers: []statusdoc.Peer{{Subnet: peerSub.String(), PublicIP: peerIP.String(), Programmed: true}}},
			IPTables: &statusdoc.IPTables{InPlace: true},
		},
		Now: func() time.Time { return now },
		Opts: Options{
			SubnetFile: "/run/flannel/subnet.env", CNIConfDir: "/etc/cni/net.d", CNIBinDir: "/opt/cni/bin",
			HealthPort: 8476, RenewMargin: time.Hour, ProbeTimeout: 100 * time.Millisecond,
		},
	}
}
