package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/overlayd/overlayd/doctor"
	"github.com/overlayd/overlayd/health"
	"github.com/overlayd/overlayd/statusdoc"
	"github.com/overlayd/overlayd/subnet"
)

// doctorFlags are `overlayd doctor`'s settings: the daemon's flags of the
// same names (also read from FLANNELD_*), plus doctor's own.
type doctorFlags struct {
	etcd                          etcdFlags
	etcdAPI, metricsAddr          string
	subnetFile, iface, publicIP   string
	cniConfDir, cniBinDir, root   string
	healthPort, maxPeers, renewMn int
	timeout                       time.Duration
	asJSON, fix, kube             bool
}

func newDoctorFlagSet(d *doctorFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("overlayd doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addEtcdFlags(fs, &d.etcd, "etcd prefix of the flannel network")
	fs.StringVar(&d.etcdAPI, "etcd-api", "v3", "etcd API: v3, v2 or auto")
	fs.StringVar(&d.metricsAddr, "metrics-addr", "127.0.0.1:9473", "the daemon's --metrics-addr (its /status is read when it runs)")
	fs.StringVar(&d.subnetFile, "subnet-file", "/run/flannel/subnet.env", "the daemon's --subnet-file")
	fs.StringVar(&d.iface, "iface", "", "the daemon's --iface (the external interface), when not read from /status")
	fs.StringVar(&d.publicIP, "public-ip", "", "the daemon's --public-ip, when not read from /status")
	fs.StringVar(&d.cniConfDir, "cni-conf-dir", "/etc/cni/net.d", "where the kubelet reads CNI configs (empty: not checked)")
	fs.StringVar(&d.cniBinDir, "cni-bin-dir", "/opt/cni/bin", "where the CNI plugins are")
	fs.StringVar(&d.root, "root", "/", "the host's file system root (/host inside a pod that mounts it)")
	fs.IntVar(&d.healthPort, "health-port", health.DefaultPort, "the peers' --health-port (0: no underlay probe)")
	fs.IntVar(&d.maxPeers, "max-peers", 16, "probe at most this many peers one-shot")
	fs.IntVar(&d.renewMn, "subnet-lease-renew-margin", 60, "the daemon's --subnet-lease-renew-margin (minutes)")
	fs.DurationVar(&d.timeout, "timeout", 2*time.Second, "bound of each probe and of each datastore request")
	fs.BoolVar(&d.asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&d.fix, "fix", false, "apply the safe fixes (sysctls, module load) and say what changed")
	fs.BoolVar(&d.kube, "kube-subnet-mgr", false, "the daemon runs with --kube-subnet-mgr (the datastore is the Kubernetes API: not checked)")
	return fs
}

// doctorShared: the flags that also read FLANNELD_<FLAG>, as the daemon's.
func doctorShared(name string) bool {
	switch name {
	case "etcd-endpoints", "etcd-prefix", "etcd-cafile", "etcd-certfile", "etcd-keyfile", "etcd-username",
		"etcd-password", "etcd-api", "metrics-addr", "subnet-file", "iface", "public-ip",
		"subnet-lease-renew-margin", "kube-subnet-mgr", "health-port":
		return true
	}
	return false
}

// doctorMain implements `overlayd doctor` (docs/doctor.md). Exit codes:
// 0 all passed, 1 warnings, 2 failures, 3 doctor could not run.
func doctorMain(args []string, stdout, stderr io.Writer) int {
	var d doctorFlags
	fs := newDoctorFlagSet(&d, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return doctor.ExitError
	}
	applyEnv(fs, os.Getenv, doctorShared)
	e, closeEnv, err := d.env(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "overlayd doctor: %v\n", err)
		return doctor.ExitError
	}
	defer closeEnv()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep := doctor.Run(ctx, e)
	if d.asJSON {
		rep.WriteJSON(stdout)
	} else {
		rep.WriteTable(stdout)
	}
	return rep.ExitCode()
}

// env builds the host view; the returned func closes what it opened.
func (d doctorFlags) env(stderr io.Writer) (*doctor.Env, func(), error) {
	var pub netip.Addr
	if d.publicIP != "" {
		var err error
		if pub, err = netip.ParseAddr(d.publicIP); err != nil {
			return nil, nil, fmt.Errorf("--public-ip: %q is not an IP address", d.publicIP)
		}
	}
	if d.healthPort < 0 || d.healthPort > 65535 {
		return nil, nil, fmt.Errorf("--health-port: %d is out of range 0..65535", d.healthPort)
	}
	e := &doctor.Env{
		Sysctl: doctor.ProcSysctls{Root: d.root}, Modules: doctor.SysModules{Root: d.root},
		Backends: doctor.ExecBackends{}, FS: os.DirFS(d.root), Probe: doctor.SocketProber{}, Now: time.Now,
		Opts: doctor.Options{
			SubnetFile: d.subnetFile, CNIConfDir: d.cniConfDir, CNIBinDir: d.cniBinDir, Iface: d.iface,
			PublicIP: pub, HealthPort: d.healthPort, MaxPeers: d.maxPeers, ProbeTimeout: d.timeout,
			RenewMargin: time.Duration(d.renewMn) * time.Minute, Fix: d.fix,
		},
	}
	closers := []func(){}
	if ipt, err := doctor.NewIPTables(); err == nil {
		e.IPT = ipt
	}
	if h, err := netlink.NewHandle(); err == nil {
		e.Net = doctor.NetlinkNet{H: h}
		closers = append(closers, h.Close)
	}
	e.Status, e.StatusErr = d.readStatus()
	if d.kube {
		e.StoreErr = fmt.Errorf("--kube-subnet-mgr: the Kubernetes API is not checked by this version: %w", doctor.ErrStoreNotChecked)
	} else {
		closers = append(closers, d.openStore(e))
	}
	return e, func() {
		for _, c := range closers {
			c()
		}
	}, nil
}

func (d doctorFlags) readStatus() (*statusdoc.Doc, error) {
	if d.metricsAddr == "" {
		return nil, errors.New("--metrics-addr is empty")
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	raw, err := fetchStatus(ctx, d.metricsAddr)
	if err != nil {
		return nil, err
	}
	var doc statusdoc.Doc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("decode /status from %s: %w", d.metricsAddr, err)
	}
	return &doc, nil
}

// openStore connects to etcd; a failure is a finding, not an error.
func (d doctorFlags) openStore(e *doctor.Env) func() {
	var bad []string
	eps := parseEndpoints(d.etcd.endpoints, func(f string, a ...any) { bad = append(bad, fmt.Sprintf(f, a...)) })
	if len(bad) > 0 {
		e.StoreErr = errors.New(strings.Join(bad, "; "))
		return func() {}
	}
	o := options{
		etcdEndpoints: eps, etcdPrefix: d.etcd.prefix, etcdCAFile: d.etcd.caFile, etcdCertFile: d.etcd.certFile,
		etcdKeyFile: d.etcd.keyFile, etcdUsername: d.etcd.username, etcdPassword: d.etcd.password, etcdAPI: d.etcdAPI,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*d.timeout)
	defer cancel()
	reg, _, err := openRegistry(ctx, o, slog.New(slog.DiscardHandler))
	if err != nil {
		e.StoreErr = err
		return func() {}
	}
	e.Store = timedStore{reg: reg, timeout: 2 * d.timeout}
	e.ServerTime = func(ctx context.Context) (time.Time, error) { return etcdServerTime(ctx, eps[0], d.etcd, d.timeout) }
	return func() { reg.Close() }
}

// timedStore bounds each datastore request (etcd's client retries an
// unreachable endpoint until the context ends).
type timedStore struct {
	reg     registry
	timeout time.Duration
}

func (s timedStore) GetNetworkConfig(ctx context.Context) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.reg.GetNetworkConfig(ctx)
}

func (s timedStore) ListLeases(ctx context.Context) (subnet.LeaseList, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.reg.ListLeases(ctx)
}

// etcdServerTime is the Date header of etcd's /version answer.
func etcdServerTime(ctx context.Context, endpoint string, f etcdFlags, timeout time.Duration) (time.Time, error) {
	client := &http.Client{Timeout: timeout}
	if strings.HasPrefix(endpoint, "https://") {
		cfg, err := doctorTLS(f)
		if err != nil {
			return time.Time{}, err
		}
		client.Transport = &http.Transport{TLSClientConfig: cfg}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+"/version", nil)
	if err != nil {
		return time.Time{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return time.Time{}, err
	}
	resp.Body.Close()
	t, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return time.Time{}, fmt.Errorf("etcd's Date header %q: %w", resp.Header.Get("Date"), err)
	}
	return t, nil
}

func doctorTLS(f etcdFlags) (*tls.Config, error) {
	cfg := &tls.Config{}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cafile: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AppendCertsFromPEM(pem)
	}
	if f.certFile != "" {
		cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-certfile/--etcd-keyfile: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
