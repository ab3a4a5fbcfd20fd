package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/overlayd/overlayd/bench/internal/fakepeers"
	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/subnet"
)

// network holds 8192 /24s: the peers, the churn's spares and the node.
var network = netip.MustParsePrefix("10.224.0.0/11")

// result is what a run measured.
type result struct {
	Started    time.Time     `json:"started"`
	Samples    []sample      `json:"samples"`
	Ops        churnCounts   `json:"ops"`
	Passes     percentiles   `json:"pass_seconds"`
	Logs       logStats      `json:"logs"`
	Mismatches int           `json:"mismatches"`
	Examples   []string      `json:"mismatch_examples,omitempty"`
	Converge   time.Duration `json:"initial_sync_ns"`
}

// run builds overlayd, starts etcd and a one-node lab, loads the peers,
// churns for cfg.duration while sampling, and checks the kernel.
func run(ctx context.Context, cfg config, log *slog.Logger) (result, error) {
	work, err := os.MkdirTemp("", "overlayd-soak-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(work)
	bin, err := lab.BuildOverlayd(ctx, work)
	if err != nil {
		return result{}, err
	}
	srv, err := etcdtest.Start(ctx, etcdtest.Options{})
	if err != nil {
		return result{}, err
	}
	defer srv.Stop()
	l, err := lab.New(ctx, lab.Options{Nodes: 1, Network: network, EtcdEndpoint: srv.Endpoint(), WorkDir: filepath.Join(work, "lab"), Logger: log})
	if err != nil {
		return result{}, err
	}
	defer l.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return result{}, err
	}
	defer cli.Close()
	return soak(ctx, cfg, log, l, cli, bin)
}

func soak(ctx context.Context, cfg config, log *slog.Logger, l *lab.Lab, cli *clientv3.Client, bin string) (result, error) {
	if _, err := cli.Put(ctx, subnet.ConfigKey(subnet.DefaultPrefix), l.ConfigJSON()); err != nil {
		return result{}, fmt.Errorf("put config: %w", err)
	}
	n := l.Nodes[0]
	a, err := l.StartAgent(ctx, n, lab.OverlaydArgs(bin, l, n, "--resync-interval="+cfg.resync.String()))
	if err != nil {
		return result{}, err
	}
	if err := l.WaitReady(ctx, n); err != nil {
		return result{}, err
	}
	env, err := l.WaitSubnetFile(ctx, n)
	if err != nil {
		return result{}, err
	}
	gen, err := fakepeers.NewGenerator(network, 24)
	if err != nil {
		return result{}, err
	}
	gen.Skip(env.Lease())
	pool, err := gen.Take(min(cfg.peers+2000, 8000))
	if err != nil {
		return result{}, err
	}
	ch := newChurn(cli, pool, cfg.peers)
	res := result{Started: time.Now()}
	if err := ch.load(ctx); err != nil {
		return res, err
	}
	if err := waitPeers(ctx, n.NS, cfg.peers); err != nil {
		return res, err
	}
	res.Converge = time.Since(res.Started)
	log.Info("peers loaded and programmed", "peers", cfg.peers, "took", res.Converge)
	before, err := scrapeMetrics(ctx, n.NS)
	if err != nil {
		return res, err
	}
	logMark := fileSize(a.LogPath)
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	samples := make(chan []sample, 1)
	go func() { samples <- sampleUntil(cctx, cfg.sample, a.Pid(), n.NS, start, log) }()
	res.Ops = ch.run(cctx, cfg.rate)
	res.Samples = <-samples
	after, err := scrapeMetrics(ctx, n.NS)
	if err != nil {
		return res, err
	}
	res.Passes = passPercentiles(before, after)
	desired, err := ch.desired(ctx)
	if err != nil {
		return res, err
	}
	res.Mismatches, res.Examples, err = settleAndCompare(ctx, n.NS, desired, env.Lease(), 2*cfg.resync+10*time.Second)
	if err != nil {
		return res, err
	}
	res.Logs, err = readLogStats(a.LogPath, logMark, time.Since(start))
	return res, err
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// waitPeers waits until the reconciler programs want peers.
func waitPeers(ctx context.Context, ns string, want int) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		m, err := scrapeMetrics(ctx, ns)
		if err == nil && m["overlayd_sync_peers"] == float64(want) && m["overlayd_sync_in_sync"] == 1 {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("the node did not program %s peers within 5 minutes", strconv.Itoa(want))
}
