// Command syncbench measures overlayd's sync engine at N fake peers,
// side by side for several N in one run, against the kernel's own limit.
// As root, from the module root:
//
//	go run ./bench/syncbench -n 1000,5000,10000 -out bench/out
//
// For each N it starts a throwaway etcd, a one-node flat lab (namespaces
// only; nothing touches the root namespace) and writes N vxlan leases, then
// measures:
//
//   - the kernel's limit: `ip -batch` / `bridge -batch` installing the same
//     3N entries into a fresh namespace with the same devices (also with
//     nexthop objects for the routes);
//   - cold convergence: overlayd started over the N leases until all 3N
//     entries are in the kernel (route and neighbour notifications), as a
//     ratio to the kernel's limit;
//   - event latency: 200 times, put one new lease and time until its route
//     appears, then delete it (p50/p99);
//   - warm restart: SIGTERM, start again; kernel writes made, time until
//     /readyz and until in sync;
//   - idle resync: the duration of periodic full passes with nothing to
//     do, and overlayd's RSS.
//
// With -routes it also times route installs through netlink with and
// without nexthop objects (the nexthop evaluation). The Markdown table is
// printed and written with the JSON to -out. Everything it creates is
// removed at the end, also on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/overlayd/overlayd/bench/internal/benchrun"
	"github.com/overlayd/overlayd/bench/internal/routebench"
	"github.com/overlayd/overlayd/internal/lab"
)

// config are the command-line settings.
type config struct {
	ns         []int
	routes     []int
	out        string
	bin        string
	events     int
	resync     time.Duration
	idlePasses int
	keep       bool
	verbose    bool
	daemonEnv  []string
	// routeMode is passed as --route-mode ("": the daemon's default).
	routeMode string
	subnetLen int
	// removeAll times the removal of every peer at the end of each N.
	removeAll bool
	// ipv6: dual-stack peers (6N entries).
	ipv6 bool
}

func main() { benchrun.Main("syncbench", parseFlags, measure) }

// measure runs every N, then prints the report and writes it to -out.
func measure(ctx context.Context, cfg config) error {
	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	rep, err := run(ctx, cfg, log)
	if err != nil {
		return err
	}
	return writeReport(os.Stdout, cfg.out, rep)
}

func parseFlags(args []string) (config, error) {
	var c config
	var ns, routes, env string
	fs := flag.NewFlagSet("syncbench", flag.ContinueOnError)
	fs.StringVar(&ns, "n", "1000,5000,10000", "comma-separated peer counts (empty: none)")
	fs.StringVar(&routes, "routes", "", "comma-separated route counts for the nexthop evaluation, e.g. 1000,5000,10000,40000 (empty: skip)")
	fs.StringVar(&c.out, "out", "bench/out", "directory for syncbench.md and syncbench.json")
	fs.StringVar(&c.bin, "bin", "", "overlayd binary (default: go build ./cmd/overlayd)")
	fs.IntVar(&c.events, "events", 200, "lease events per N for the latency figures")
	fs.DurationVar(&c.resync, "resync", 2*time.Second, "--resync-interval for the warm restart and the idle passes")
	fs.IntVar(&c.idlePasses, "idle-passes", 3, "idle full passes to time per N")
	fs.StringVar(&env, "daemon-env", "", "comma-separated KEY=VALUE environment for overlayd, e.g. GOGC=50 (default: none)")
	fs.StringVar(&c.routeMode, "route-mode", "", "--route-mode for overlayd: onlink, nexthop or auto (empty: not passed); nexthop also skips the kernel limit with classic routes, which is quadratic")
	fs.IntVar(&c.subnetLen, "subnet-len", 24, "SubnetLen of the 10.0.0.0/8 network: 24 leaves room for 65,536 peers, 26 for 262,144")
	fs.BoolVar(&c.removeAll, "remove-all", true, "at the end of each N, delete every peer's lease and time until the kernel holds none of their entries")
	fs.BoolVar(&c.ipv6, "ipv6", false, "dual-stack: the node and every peer also have an IPv6 subnet (2001:db8:1000::/48 cut into /64s), so 6N kernel entries; at most 65,535 peers")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory (agent logs, batch files) and print its path")
	fs.BoolVar(&c.verbose, "v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	if c.ns, err = benchrun.Counts("-n", ns, 200000); err != nil {
		return c, err
	}
	if c.routes, err = benchrun.Counts("-routes", routes, 200000); err != nil {
		return c, err
	}
	for _, kv := range strings.Split(env, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return c, fmt.Errorf("-daemon-env: %q is not KEY=VALUE", kv)
		}
		c.daemonEnv = append(c.daemonEnv, kv)
	}
	switch {
	case len(c.ns) == 0 && len(c.routes) == 0:
		return c, errors.New("nothing to do: -n and -routes are both empty")
	case c.events < 1:
		return c, fmt.Errorf("-events %d: want at least 1", c.events)
	case c.idlePasses < 1:
		return c, fmt.Errorf("-idle-passes %d: want at least 1", c.idlePasses)
	case c.resync < time.Second:
		return c, fmt.Errorf("-resync %s: overlayd wants at least 1s", c.resync)
	case c.subnetLen < 16 || c.subnetLen > 28:
		return c, fmt.Errorf("-subnet-len %d: want 16..28", c.subnetLen)
	case c.routeMode != "" && c.routeMode != "onlink" && c.routeMode != "nexthop" && c.routeMode != "auto":
		return c, fmt.Errorf("-route-mode %q: want onlink, nexthop or auto", c.routeMode)
	}
	for _, n := range c.ns {
		if c.ipv6 && n > 1<<16-2 {
			return c, fmt.Errorf("-n %d with -ipv6: the IPv6 network has room for %d /64 subnets besides ours", n, 1<<16-2)
		}
		if room := 1<<(c.subnetLen-network.Bits()) - 2; n > room {
			return c, fmt.Errorf("-n %d: the network has room for %d /%d subnets besides ours; raise -subnet-len", n, room, c.subnetLen)
		}
	}
	return c, nil
}

func run(ctx context.Context, cfg config, log *slog.Logger) (report, error) {
	rep := report{
		Command: "syncbench " + strings.Join(os.Args[1:], " "),
		Machine: describeMachine(ctx),
		Settings: reportSettings{Events: cfg.events, SteadyResync: steadyResync.String(), IdleResync: cfg.resync.String(),
			IdlePasses: cfg.idlePasses, Network: network.String(), SubnetLen: cfg.subnetLen, RouteBenchOnly: len(cfg.ns) == 0,
			RouteMode: cfg.routeMode, IPv6: cfg.ipv6,
			DaemonEnv: cfg.daemonEnv},
	}
	work, err := os.MkdirTemp("", "syncbench-")
	if err != nil {
		return rep, fmt.Errorf("work dir: %w", err)
	}
	if cfg.keep {
		log.Info("keeping the work directory", "dir", work)
	} else {
		defer os.RemoveAll(work)
	}
	if len(cfg.ns) > 0 {
		if rep.Runs, err = runAll(ctx, cfg, work, log, &rep.Settings); err != nil {
			return rep, err
		}
		rep.Targets = judge(rep.Runs)
	}
	for _, n := range cfg.routes {
		log.Info("route installs: classic vs nexthop objects", "routes", n)
		r, err := routebench.Measure(ctx, n)
		if err != nil {
			return rep, fmt.Errorf("route bench at %d routes: %w", n, err)
		}
		rep.Routes = append(rep.Routes, r)
	}
	return rep, nil
}

func runAll(ctx context.Context, cfg config, work string, log *slog.Logger, rep *reportSettings) ([]runResult, error) {
	bin := cfg.bin
	if bin == "" {
		log.Info("building overlayd")
		var err error
		if bin, err = lab.BuildOverlayd(ctx, work); err != nil {
			return nil, err
		}
	}
	rep.Tree = describeTree(ctx)
	if fi, err := os.Stat(bin); err == nil {
		rep.BinaryMiB = float64(fi.Size()) / (1 << 20)
	}
	s := settings{bin: bin, events: cfg.events, resync: cfg.resync, idlePasses: cfg.idlePasses, workDir: work, log: log,
		daemonEnv: cfg.daemonEnv, routeMode: cfg.routeMode, subnetLen: cfg.subnetLen, removeAll: cfg.removeAll, ipv6: cfg.ipv6}
	var runs []runResult
	for _, n := range cfg.ns {
		start := time.Now()
		r, err := runOne(ctx, s, n)
		if err != nil {
			return nil, fmt.Errorf("N=%d: %w", n, err)
		}
		log.Info("done", "n", n, "took", time.Since(start).Round(time.Millisecond))
		runs = append(runs, r)
	}
	return runs, nil
}
