package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/offload"
)

// options are the daemon's settings after flags, FLANNELD_* environment
// and validation.
type options struct {
	etcdEndpoints []string
	etcdPrefix    string
	etcdCAFile    string
	etcdCertFile  string
	etcdKeyFile   string
	etcdUsername  string
	etcdPassword  string
	etcdAPI       string // "v2", "v3" or "auto"

	ifaces        []string
	ifaceRegex    []string
	ifaceCanReach netip.Addr
	publicIP      netip.Addr
	publicIPv6    netip.Addr

	subnetFile        string
	renewMargin       time.Duration
	leaseTTL          time.Duration // --subnet-lease-ttl (overlayd's; flanneld's is fixed at 24h)
	ipMasq            bool
	randomFullyOff    bool
	iptablesResync    time.Duration
	forwardRules      bool
	healthzAddr       string // "" when --healthz-port is 0
	metricsAddr       string
	resyncInterval    time.Duration
	routeMode         backend.RouteMode // --route-mode
	vxlanPeerFilter   bool
	txChecksumOffload offload.Mode // --tx-checksum-offload (--keep-tx-checksum-offload: on)
	logLevel          string
	showVersion       bool
	sameSitePort      uint16 // same-site responder's UDP port; 0: off
	healthPort        uint16 // health responder's UDP port; 0: off (health.go)
	healthInterval    time.Duration
	healthSample      int

	kube kubeOptions // --kube-subnet-mgr and its flags (kube.go)

	logFormat      string // "text" or "json"
	blackholeRoute bool   // --ip-blackhole-route
	// warnings are logged once the logger exists: FLANNELD_* values that
	// did not parse, flags accepted only for compatibility.
	warnings []string
}

// rawFlags holds the strings as given, before validation.
type rawFlags struct {
	etcd                                                          etcdFlags
	etcdAPI                                                       string
	ifaces, ifaceRegex                                            listFlag
	ifaceCanReach, publicIP, publicIPv6, subnetFile               string
	renewMargin, iptablesResync, healthzPort                      int
	healthzIP, metricsAddr, logLevel                              string
	resyncInterval, leaseTTL                                      time.Duration
	ipMasq, randomFullyOff, forwardRules, vxlanPeerFilter         bool
	keepTxChecksum, showVersion, kubeSubnetMgr                    bool
	kubeAPIURL, kubeconfigFile, kubeAnnotationPrefix, netConfPath string
	sameSitePort                                                  int
	healthPort, healthSample                                      int
	healthInterval                                                time.Duration
	txChecksumOffload, routeMode                                  string
	logFormat, vmodule, logBacktraceAt                            string
	verbosity                                                     int
	blackholeRoute, setNodeNetworkUnavailable                     bool
}

// listFlag is a repeatable flag. Each value is taken as given, as
// flanneld does: a regex such as eth{1,3} keeps its comma. Repeat the flag
// for several values; the environment form is one value.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error {
	if v = strings.TrimSpace(v); v != "" {
		*l = append(*l, v)
	}
	return nil
}

// etcdFlags are the etcd connection flags the daemon and migrate-etcd share.
type etcdFlags struct {
	endpoints, prefix, caFile, certFile, keyFile, username, password string
}

func addEtcdFlags(fs *flag.FlagSet, e *etcdFlags, prefixHelp string) {
	fs.StringVar(&e.endpoints, "etcd-endpoints", "http://127.0.0.1:4001,http://127.0.0.1:2379", "comma-separated etcd client URLs")
	fs.StringVar(&e.prefix, "etcd-prefix", "/coreos.com/network", prefixHelp)
	fs.StringVar(&e.caFile, "etcd-cafile", "", "CA bundle that signed the etcd server certificate")
	fs.StringVar(&e.certFile, "etcd-certfile", "", "client certificate for etcd (mutual TLS)")
	fs.StringVar(&e.keyFile, "etcd-keyfile", "", "client key for etcd (mutual TLS)")
	fs.StringVar(&e.username, "etcd-username", "", "etcd user name")
	fs.StringVar(&e.password, "etcd-password", "", "etcd password")
}

func newFlagSet(r *rawFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("overlayd", flag.ContinueOnError)
	addEtcdFlags(fs, &r.etcd, "etcd prefix of the flannel network")
	fs.StringVar(&r.etcdAPI, "etcd-api", "v3", "etcd API: v3, v2 (flannel v0.11 clusters), or auto (v3 if a v3 config exists, else v2 if a v2 config exists, else v3)")
	fs.Var(&r.ifaces, "iface", "interface name or IP to use for the underlay (repeatable; first usable wins)")
	fs.Var(&r.ifaceRegex, "iface-regex", "regex matched against interface IPs, then names (repeatable)")
	fs.StringVar(&r.ifaceCanReach, "iface-can-reach", "", "pick the interface that routes to this IP (IPv4 or IPv6)")
	fs.StringVar(&r.publicIP, "public-ip", "", "IPv4 address advertised to peers (default: the interface address); may be a 1:1 NAT address that is on no interface")
	fs.StringVar(&r.publicIPv6, "public-ipv6", "", "IPv6 address advertised to peers with EnableIPv6 (default: the interface's IPv6 address); may be on no interface behind NAT")
	fs.StringVar(&r.subnetFile, "subnet-file", "/run/flannel/subnet.env", "file the lease is written to for the CNI plugin and Docker")
	fs.IntVar(&r.renewMargin, "subnet-lease-renew-margin", 60, "renew the lease this many minutes before it expires (1..1439)")
	fs.DurationVar(&r.leaseTTL, "subnet-lease-ttl", 24*time.Hour, "TTL of our etcd lease, 10s..24h (flanneld: always 24h); a shorter one fences a node cut from etcd sooner")
	fs.BoolVar(&r.ipMasq, "ip-masq", false, "masquerade traffic leaving the pod network")
	fs.BoolVar(&r.randomFullyOff, "ip-masq-fully-random-disable", false, "do not use --random-fully in masquerade rules")
	fs.IntVar(&r.iptablesResync, "iptables-resync", 5, "seconds between iptables rule checks")
	fs.BoolVar(&r.forwardRules, "iptables-forward-rules", true, "accept forwarded pod traffic in FLANNEL-FWD")
	fs.StringVar(&r.healthzIP, "healthz-ip", "0.0.0.0", "address for /healthz and /readyz")
	fs.IntVar(&r.healthzPort, "healthz-port", 0, "port for /healthz and /readyz (0 = off; then they are served on --metrics-addr)")
	fs.StringVar(&r.metricsAddr, "metrics-addr", "127.0.0.1:9473", "host:port for /metrics, /status, /healthz, /readyz (empty = off)")
	fs.DurationVar(&r.resyncInterval, "resync-interval", 60*time.Second, "full kernel resync period (jittered)")
	fs.StringVar(&r.routeMode, "route-mode", "auto", "shape of the routes to peers: onlink (flanneld's: via the peer subnet's address, onlink), nexthop (one nexthop object per peer; needs Linux 5.3+), or auto (nexthop from 2000 peers on, when the kernel has nexthop objects; see docs/performance.md)")
	fs.BoolVar(&r.vxlanPeerFilter, "vxlan-peer-filter", false, "accept VXLAN UDP only from current peers (iptables + ipset)")
	fs.IntVar(&r.sameSitePort, "same-site-port", 8475, "UDP port on the bind address for verifying same-site peers behind 1:1 NAT, whose VXLAN then goes to their private address (0 = off; see docs/public-cloud.md)")
	fs.IntVar(&r.healthPort, "health-port", 8476, "UDP port on the bind address where overlayd answers peers' health probes, and the port it probes them on (0 = off; see docs/doctor.md)")
	fs.DurationVar(&r.healthInterval, "health-interval", 10*time.Second, "interval of the peer health probes")
	fs.IntVar(&r.healthSample, "health-sample", 32, "peers probed per health interval at most, besides those whose entries just changed (rotating through all)")
	fs.StringVar(&r.txChecksumOffload, "tx-checksum-offload", "auto", "tx checksum offload on the VXLAN device: auto (on, as flanneld, unless the kernel predates the NAT checksum fix), on, or off (see docs/public-cloud.md)")
	fs.BoolVar(&r.keepTxChecksum, "keep-tx-checksum-offload", false, "same as --tx-checksum-offload=on (kept for older command lines)")
	fs.StringVar(&r.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&r.logFormat, "log-format", "text", "log line format: text (logfmt) or json")
	fs.IntVar(&r.verbosity, "v", 0, "flanneld's klog verbosity: 1 or more means --log-level=debug unless --log-level is given")
	fs.StringVar(&r.vmodule, "vmodule", "", "flanneld's per-file klog verbosity: accepted for compatibility, ignored (a warning says so)")
	fs.StringVar(&r.logBacktraceAt, "log_backtrace_at", "", "flanneld's klog stack-trace point: accepted for compatibility, ignored (a warning says so)")
	fs.BoolVar(&r.blackholeRoute, "ip-blackhole-route", false, "keep a blackhole route for this node's pod subnet, as flanneld does (for setups without the bridge plugin, e.g. Canal)")
	fs.BoolVar(&r.setNodeNetworkUnavailable, "set-node-network-unavailable", true, "with --kube-subnet-mgr: set the Node's NetworkUnavailable=False condition once ready")
	fs.BoolVar(&r.showVersion, "version", false, "print the version and exit")
	fs.BoolVar(&r.kubeSubnetMgr, "kube-subnet-mgr", false, "Kubernetes subnet manager mode, as kube-flannel: the subnet is the Node's podCIDR, the lease lives in Node annotations (no etcd)")
	fs.StringVar(&r.kubeAPIURL, "kube-api-url", "", "Kubernetes API server URL (--kube-subnet-mgr; default: the in-cluster config, or the server of --kubeconfig-file)")
	fs.StringVar(&r.kubeconfigFile, "kubeconfig-file", "", "kubeconfig file (--kube-subnet-mgr; default: the pod's service account)")
	fs.StringVar(&r.kubeAnnotationPrefix, "kube-annotation-prefix", "flannel.alpha.coreos.com", "prefix of the Node annotations that hold the lease (--kube-subnet-mgr)")
	fs.StringVar(&r.netConfPath, "net-config-path", "/etc/kube-flannel/net-conf.json", "network config file (--kube-subnet-mgr; the etcd config's JSON)")
	return fs
}

// parseOptions parses args, then fills every flag not given on the command
// line from FLANNELD_<FLAG> (upper case, '-' as '_'), then validates.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var r rawFlags
	fs := newFlagSet(&r)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	// A bad FLANNELD_* value is logged and the flag keeps its default, as
	// flanneld does: a typo in a unit's environment must not crashloop.
	var warnings []string
	if err := applyEnv(fs, getenv, nil); err != nil {
		for _, e := range strings.Split(err.Error(), "\n") {
			warnings = append(warnings, "ignoring "+e)
		}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if r.verbosity > 0 && !given["log-level"] {
		r.logLevel = "debug"
	}
	for _, name := range []string{"vmodule", "log_backtrace_at"} {
		if given[name] {
			warnings = append(warnings, fmt.Sprintf("--%s is flanneld's klog flag; overlayd accepts it and ignores it (use --log-level)", name))
		}
	}
	o, err := validate(r)
	o.warnings = append(warnings, o.warnings...)
	return o, err
}

// applyEnv fills every flag not given on the command line, and accepted
// by want (nil: every flag), from its FLANNELD_* variable.
func applyEnv(fs *flag.FlagSet, getenv func(string) string, want func(name string) bool) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || (want != nil && !want(f.Name)) {
			return
		}
		env := EnvName(f.Name)
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				// flag's Set stores its zero on a parse error: put the
				// default back, so an ignored value means the default.
				fs.Set(f.Name, f.DefValue)
				errs = append(errs, fmt.Errorf("%s=%q (for --%s): %w", env, v, f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// EnvName maps a flag name to its FLANNELD_* environment variable.
func EnvName(flagName string) string {
	return "FLANNELD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func validate(r rawFlags) (options, error) {
	o := options{
		etcdPrefix: r.etcd.prefix, etcdCAFile: r.etcd.caFile, etcdCertFile: r.etcd.certFile,
		etcdKeyFile: r.etcd.keyFile, etcdUsername: r.etcd.username, etcdPassword: r.etcd.password,
		etcdAPI: r.etcdAPI,
		ifaces:  r.ifaces, ifaceRegex: r.ifaceRegex, subnetFile: r.subnetFile,
		ipMasq: r.ipMasq, randomFullyOff: r.randomFullyOff, forwardRules: r.forwardRules,
		metricsAddr: r.metricsAddr, resyncInterval: r.resyncInterval, vxlanPeerFilter: r.vxlanPeerFilter,
		logLevel: r.logLevel, showVersion: r.showVersion,
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	o.kube = validateKube(r, bad) // kube.go
	o.etcdEndpoints = parseEndpoints(r.etcd.endpoints, bad)
	switch r.etcdAPI {
	case "v2", "v3", "auto":
	default:
		bad("--etcd-api: %q is not one of v2, v3, auto", r.etcdAPI)
	}
	if !strings.HasPrefix(r.etcd.prefix, "/") {
		bad("--etcd-prefix: %q must start with /", r.etcd.prefix)
	}
	if (r.etcd.certFile == "") != (r.etcd.keyFile == "") {
		bad("--etcd-certfile %q and --etcd-keyfile %q must be given together", r.etcd.certFile, r.etcd.keyFile)
	}
	o.ifaceCanReach = parseIPFlag("--iface-can-reach", r.ifaceCanReach, 0, bad)
	o.publicIP = parseIPFlag("--public-ip", r.publicIP, 4, bad)
	o.publicIPv6 = parseIPFlag("--public-ipv6", r.publicIPv6, 6, bad)
	if r.subnetFile == "" {
		bad("--subnet-file: must not be empty")
	}
	if r.renewMargin < 1 || r.renewMargin > 1439 {
		bad("--subnet-lease-renew-margin: %d is out of range 1..1439 minutes", r.renewMargin)
	}
	o.renewMargin = time.Duration(r.renewMargin) * time.Minute
	o.leaseTTL = r.leaseTTL
	if r.leaseTTL < 10*time.Second || r.leaseTTL > 24*time.Hour {
		bad("--subnet-lease-ttl: %s is out of range 10s..24h", r.leaseTTL)
	} else if o.renewMargin >= r.leaseTTL {
		o.renewMargin = r.leaseTTL / 3
		o.warnings = append(o.warnings, fmt.Sprintf("--subnet-lease-renew-margin %s is not shorter than --subnet-lease-ttl %s: renewing %s before expiry", time.Duration(r.renewMargin)*time.Minute, r.leaseTTL, o.renewMargin))
	}
	if r.iptablesResync < 1 {
		bad("--iptables-resync: %d must be at least 1 second", r.iptablesResync)
	}
	o.iptablesResync = time.Duration(r.iptablesResync) * time.Second
	if r.resyncInterval < time.Second {
		bad("--resync-interval: %s must be at least 1s", r.resyncInterval)
	}
	if m, err := backend.ParseRouteMode(r.routeMode); err != nil {
		bad("--route-mode: %v", err)
	} else {
		o.routeMode = m
	}
	if r.sameSitePort < 0 || r.sameSitePort > 65535 {
		bad("--same-site-port: %d is out of range 0..65535", r.sameSitePort)
	}
	o.sameSitePort = uint16(r.sameSitePort)
	if r.healthPort < 0 || r.healthPort > 65535 {
		bad("--health-port: %d is out of range 0..65535", r.healthPort)
	}
	o.healthPort = uint16(r.healthPort)
	if r.healthInterval < 100*time.Millisecond {
		bad("--health-interval: %s must be at least 100ms", r.healthInterval)
	}
	if r.healthSample < 1 {
		bad("--health-sample: %d must be at least 1", r.healthSample)
	}
	o.healthInterval, o.healthSample = r.healthInterval, r.healthSample
	o.txChecksumOffload = validateOffload(r, bad)
	if r.healthzPort < 0 || r.healthzPort > 65535 {
		bad("--healthz-port: %d is out of range 0..65535", r.healthzPort)
	} else if r.healthzPort > 0 {
		ip := parseIPFlag("--healthz-ip", r.healthzIP, 0, bad)
		if ip.IsValid() {
			o.healthzAddr = netip.AddrPortFrom(ip, uint16(r.healthzPort)).String()
		}
	}
	if r.metricsAddr != "" {
		if _, err := netip.ParseAddrPort(r.metricsAddr); err != nil {
			bad("--metrics-addr: %q is not host:port with an IP host (e.g. 127.0.0.1:9473)", r.metricsAddr)
		}
	}
	o.logFormat, o.blackholeRoute = r.logFormat, r.blackholeRoute
	if r.logFormat != "text" && r.logFormat != "json" {
		bad("--log-format: %q is not one of text, json", r.logFormat)
	}
	switch r.logLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("--log-level: %q is not one of debug, info, warn, error", r.logLevel)
	}
	return o, errors.Join(errs...)
}

// validateOffload reads --tx-checksum-offload, with
// --keep-tx-checksum-offload as another way to say "on".
func validateOffload(r rawFlags, bad func(string, ...any)) offload.Mode {
	mode, err := offload.ParseMode(r.txChecksumOffload)
	if err != nil {
		bad("--tx-checksum-offload: %v", err)
		return offload.Auto
	}
	if r.keepTxChecksum {
		if mode == offload.Off {
			bad("--keep-tx-checksum-offload contradicts --tx-checksum-offload=off")
		}
		return offload.On
	}
	return mode
}

// parseEndpoints splits --etcd-endpoints and checks each is an http(s) URL.
func parseEndpoints(raw string, bad func(string, ...any)) []string {
	var out []string
	for _, e := range strings.Split(raw, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
			bad("--etcd-endpoints: %q is not an http:// or https:// URL", e)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		bad("--etcd-endpoints: %q names no endpoint", raw)
	}
	return out
}

// parseIPFlag parses an optional IP flag; family is 4, 6 or 0 (either).
func parseIPFlag(name, v string, family int, bad func(string, ...any)) netip.Addr {
	if v == "" {
		return netip.Addr{}
	}
	ip, err := netip.ParseAddr(v)
	switch {
	case err != nil:
		bad("%s: %q is not an IP address", name, v)
	case family == 4 && !ip.Is4():
		bad("%s: %q is not an IPv4 address", name, v)
	case family == 6 && !ip.Is6():
		bad("%s: %q is not an IPv6 address", name, v)
	default:
		return ip
	}
	return netip.Addr{}
}

// exitCodeFor maps a flag error to an exit code: 0 for --help, else 2.
func exitCodeFor(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
