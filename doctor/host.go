package doctor

import (
	"context"
	"io/fs"
	"net/netip"
	"time"

	"github.com/overlayd/overlayd/statusdoc"
	"github.com/overlayd/overlayd/subnet"
)

// Sysctls reads and writes /proc/sys values by dotted name
// ("net.ipv4.ip_forward").
type Sysctls interface {
	Get(name string) (string, error)
	Set(name, value string) error
}

// Modules tells whether a kernel module is loaded, and loads one.
type Modules interface {
	Loaded(name string) (bool, error)
	Load(name string) error
}

// IPTables lists a chain as `iptables -S` does (a built-in chain's first
// line is its policy, "-P FORWARD DROP").
type IPTables interface {
	ChainExists(table, chain string) (bool, error)
	List(table, chain string) ([]string, error)
}

// IPTablesBackends reads the rules of each iptables backend separately:
// Save("legacy") is iptables-legacy-save, Save("nft") iptables-nft-save;
// ok is false when that backend's tool is missing.
type IPTablesBackends interface {
	Save(backend string) (out string, ok bool, err error)
	// InUse is the backend `iptables` itself uses: "legacy" or "nft".
	InUse() (string, error)
}

// Link is a network device and its IPv4 addresses.
type Link struct {
	Name  string
	MTU   int
	Up    bool
	Addrs []netip.Prefix
	// VXLAN is set for VXLAN devices.
	VXLAN *VXLANInfo
}

// VXLANInfo is a VXLAN device's parameters.
type VXLANInfo struct {
	VNI   int
	Local netip.Addr
	Port  int
}

// Route is an IPv4 route of the main table.
type Route struct {
	Dst netip.Prefix
	Dev string // "" for routes without a device (blackhole)
	Via netip.Addr
	// Type is "unicast", "blackhole", ...
	Type string
}

// Net reads links and routes.
type Net interface {
	Links() ([]Link, error)
	Routes() ([]Route, error)
	// RouteTo is the route the kernel picks for dst (ip route get).
	RouteTo(dst netip.Addr) (Route, error)
}

// Prober sends the one-shot probes.
type Prober interface {
	// Ping sends an ICMP echo of size bytes (IP packet size) from src to
	// dst, with DF set when df, and returns the round trip.
	Ping(ctx context.Context, src, dst netip.Addr, size int, df bool) (time.Duration, error)
	// Echo probes overlayd's health responder at dst from src and returns
	// the round trip and the address the responder saw us at.
	Echo(ctx context.Context, src netip.Addr, dst netip.AddrPort) (time.Duration, netip.AddrPort, error)
}

// Datastore is what doctor reads from etcd (or the Kubernetes API).
type Datastore interface {
	GetNetworkConfig(ctx context.Context) ([]byte, error)
	ListLeases(ctx context.Context) (subnet.LeaseList, error)
}

// Options are the node's settings doctor checks against (the daemon's
// flags of the same names).
type Options struct {
	SubnetFile string
	// CNIConfDir holds the conflist; CNIBinDir the plugin binaries.
	CNIConfDir string
	CNIBinDir  string
	// Iface is the external interface (--iface), when known.
	Iface string
	// PublicIP is --public-ip, when given.
	PublicIP netip.Addr
	// HealthPort is the peers' health responder port (0: not probed).
	HealthPort int
	// MaxPeers bounds the peers probed one-shot (the rest are counted).
	MaxPeers int
	// ProbeTimeout bounds each probe.
	ProbeTimeout time.Duration
	// SkewWarn is the clock difference to etcd that earns a warning.
	SkewWarn time.Duration
	// RenewMargin is --subnet-lease-renew-margin.
	RenewMargin time.Duration
	// Fix applies the safe fixes (sysctls, module load).
	Fix bool
}

// Env is the host as doctor sees it. Nil members mean "not available
// here": their checks are skipped and say why.
type Env struct {
	Sysctl   Sysctls
	Modules  Modules
	IPT      IPTables
	Backends IPTablesBackends
	Net      Net
	// FS is the file system root (os.DirFS("/") on a host).
	FS    fs.FS
	Probe Prober
	Store Datastore
	// StoreErr is why Store is nil (connecting failed).
	StoreErr error
	// ServerTime is the datastore's clock (the Date of its HTTP answer).
	ServerTime func(ctx context.Context) (time.Time, error)
	// Status is the running daemon's /status; StatusErr why it is nil.
	Status    *statusdoc.Doc
	StatusErr error
	Now       func() time.Time
	Opts      Options
}
