package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/overlayd/overlayd/bench/internal/benchns"
	"github.com/overlayd/overlayd/bench/internal/benchrun"
	"github.com/overlayd/overlayd/bench/internal/fakepeers"
	"github.com/overlayd/overlayd/bench/internal/kernellimit"
	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"golang.org/x/sys/unix"
)

// network is the benchmark's flannel network: /24 leases leave room for
// 65,536 subnets; network6 the IPv6 network of a dual-stack run (-ipv6),
// cut into /64s.
var (
	network  = netip.MustParsePrefix("10.0.0.0/8")
	network6 = netip.MustParsePrefix("2001:db8:1000::/48")
)

const (
	// steadyResync is the resync interval while cold convergence and the
	// events are measured: the default, so that no periodic full pass
	// (a test artefact at a short interval) delays an event.
	steadyResync = 60 * time.Second
	coldTimeout  = 5 * time.Minute
	eventTimeout = 5 * time.Second
	warmTimeout  = 2 * time.Minute
	readyPoll    = 5 * time.Millisecond
	syncPoll     = 10 * time.Millisecond
)

// settings are the run's knobs.
type settings struct {
	bin        string
	events     int
	resync     time.Duration // during warm restart and the idle passes
	idlePasses int
	// daemonEnv are extra KEY=VALUE variables for overlayd (GOGC, ...).
	daemonEnv []string
	// routeMode is overlayd's --route-mode ("": not passed); subnetLen
	// the network's SubnetLen; removeAll: time removing every peer.
	routeMode string
	subnetLen int
	removeAll bool
	// ipv6: dual-stack peers, node and config (every peer also has an
	// IPv6 subnet, so 6N entries).
	ipv6    bool
	workDir string
	log     *slog.Logger
}

// runResult is everything measured at one N.
type runResult struct {
	N int `json:"n"`
	// LoadAverage is the 1-minute load average when the N started: the
	// machine is shared, and a busy CPU stretches every figure.
	LoadAverage       float64            `json:"load_average_1m"`
	LeaseWriteSeconds float64            `json:"lease_write_seconds"`
	Baseline          kernellimit.Result `json:"kernel_limit"`
	Cold              coldResult         `json:"cold"`
	Events            eventResult        `json:"events"`
	Warm              warmResult         `json:"warm_restart"`
	Idle              idleResult         `json:"idle"`
	RemoveAll         removeResult       `json:"remove_all"`
	// Footprint is the reconciler's own state at N, measured in-process.
	Footprint reconcilerFootprint `json:"reconciler_footprint"`
}

// bench is one N's lab: etcd, the one-node lab, the fake peers.
type bench struct {
	s      settings
	n      int
	dir    string
	lab    *lab.Lab
	node   *lab.Node
	leases *leaseWriter
	gen    *fakepeers.Generator
	peers  []fakepeers.Peer
	watch  *kernelWatch
	etcd   *etcdWatch
	d      *daemon
}

// runOne measures everything at n peers and removes all it made.
func runOne(ctx context.Context, s settings, n int) (runResult, error) {
	res := runResult{N: n}
	dir := filepath.Join(s.workDir, fmt.Sprintf("n%d", n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("work dir: %w", err)
	}
	etcd, err := etcdtest.Start(ctx, etcdtest.Options{})
	if err != nil {
		return res, fmt.Errorf("start etcd: %w", err)
	}
	defer etcd.Stop()
	l, err := lab.New(ctx, lab.Options{Nodes: 1, Topology: lab.Flat, Network: network, Underlay6: s.ipv6,
		EtcdEndpoint: etcd.Endpoint(), WorkDir: filepath.Join(dir, "lab"), Logger: s.log})
	if err != nil {
		return res, err
	}
	defer l.Close()
	// Runs before l.Close: the node's nexthops go after their routes.
	defer benchns.FlushRoutesThenNexthops(l.Nodes[0].NS)
	b := &bench{s: s, n: n, dir: dir, lab: l, node: l.Nodes[0]}
	b.d = &daemon{lab: l, node: b.node, bin: s.bin, env: s.daemonEnv, routeMode: s.routeMode}
	cli, err := l.EtcdClient()
	if err != nil {
		return res, err
	}
	defer cli.Close()
	if err := l.WriteConfig(ctx, networkConfig(s)); err != nil {
		return res, err
	}
	b.leases = newLeaseWriter(cli)
	b.etcd = startEtcdWatch(ctx, cli)
	defer b.etcd.Close()
	return b.run(ctx, res)
}

func (b *bench) run(ctx context.Context, res runResult) (runResult, error) {
	var err error
	if res.LeaseWriteSeconds, err = b.writePeers(ctx); err != nil {
		return res, err
	}
	// Each measurement starts once the kernel has finished flushing the
	// namespaces deleted before it (the previous N's, the baseline's).
	if err := benchns.WaitQuiet(ctx, b.node.NS); err != nil {
		return res, err
	}
	res.LoadAverage = benchrun.LoadAverage()
	b.s.log.Info("kernel limit (iproute2 batches)", "n", b.n)
	if res.Baseline, err = kernellimit.MeasureWith(ctx, b.peers, b.dir, kernellimit.Options{NexthopOnly: b.s.routeMode == "nexthop", IPv6: b.s.ipv6}); err != nil {
		return res, err
	}
	if res.Footprint, err = measureFootprint(ctx, b.peers, b.s.routeMode, b.s.subnetLen); err != nil {
		return res, err
	}
	if err := benchns.WaitQuiet(ctx, b.node.NS); err != nil {
		return res, err
	}
	b.s.log.Info("cold convergence", "n", b.n)
	if res.Cold, err = b.measureCold(ctx, res.Baseline); err != nil {
		return res, err
	}
	if b.watch, err = startKernelWatch(b.node.NS, network); err != nil {
		return res, err
	}
	defer b.watch.Close()
	b.s.log.Info("event latency", "n", b.n, "events", b.s.events)
	if res.Events, err = b.measureEvents(ctx); err != nil {
		return res, err
	}
	b.s.log.Info("warm restart", "n", b.n)
	if res.Warm, err = b.measureWarm(ctx); err != nil {
		return res, err
	}
	b.s.log.Info("idle resync passes", "n", b.n, "passes", b.s.idlePasses, "interval", b.s.resync)
	if res.Idle, err = b.measureIdle(ctx); err != nil {
		return res, err
	}
	if b.s.removeAll {
		b.s.log.Info("remove all peers", "n", b.n)
		if res.RemoveAll, err = b.measureRemoveAll(ctx); err != nil {
			return res, err
		}
	}
	if err := b.d.stop(); err != nil {
		return res, err
	}
	return res, b.watch.Err()
}

// networkConfig is the flannel network config of the run.
func networkConfig(s settings) string {
	if s.ipv6 {
		return fmt.Sprintf(`{"Network":"%s","SubnetLen":%d,"EnableIPv6":true,"IPv6Network":"%s","IPv6SubnetLen":64,"Backend":{"Type":"vxlan"}}`,
			network, s.subnetLen, network6)
	}
	return fmt.Sprintf(`{"Network":"%s","SubnetLen":%d,"Backend":{"Type":"vxlan"}}`, network, s.subnetLen)
}

func (b *bench) writePeers(ctx context.Context) (float64, error) {
	gen, err := fakepeers.NewGenerator(network, b.s.subnetLen)
	if b.s.ipv6 {
		gen, err = fakepeers.NewDualGenerator(network, b.s.subnetLen, network6)
	}
	if err != nil {
		return 0, err
	}
	b.gen = gen
	if b.peers, err = gen.Take(b.n); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := b.leases.putAll(ctx, b.peers); err != nil {
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}

// finalDump counts the node's entries on flannel.1 from a kernel dump; in
// a dual-stack run flannel-v6.1 must hold as many of each kind.
func (b *bench) finalDump() (benchns.Counts, error) {
	h, err := netnsutil.Handle(b.node.NS)
	if err != nil {
		return benchns.Counts{}, err
	}
	defer h.Close()
	count := func(dev string, family int) (benchns.Counts, error) {
		link, err := h.LinkByName(dev)
		if err != nil {
			return benchns.Counts{}, fmt.Errorf("in netns %s: find %s: %w", b.node.NS, dev, err)
		}
		return benchns.CountEntriesFamily(h, link.Attrs().Index, family)
	}
	c, err := count("flannel.1", unix.AF_INET)
	if err != nil || !b.s.ipv6 {
		return c, err
	}
	c6, err := count("flannel-v6.1", unix.AF_INET6)
	if err == nil && c6 != c {
		err = fmt.Errorf("in netns %s: flannel.1 holds %+v but flannel-v6.1 %+v", b.node.NS, c, c6)
	}
	return c, err
}
