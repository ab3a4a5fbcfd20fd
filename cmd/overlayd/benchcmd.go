package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/report"
	"github.com/overlayd/overlayd/podbench"
	"github.com/overlayd/overlayd/subnet"
)

// benchMain implements `overlayd bench`: pod-to-pod latency and
// throughput from a bench pod on this node to the bench pods of peers
// (`overlayd bench --serve` there), with bench/podlat's report.
func benchMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("overlayd bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serve := fs.Bool("serve", false, "run the peer side: a bench pod answering until SIGTERM (or --duration)")
	duration := fs.Duration("duration", 0, "with --serve: stop after this long (0: at SIGTERM)")
	subnetFile := fs.String("subnet-file", envOr("FLANNELD_SUBNET_FILE", subnet.DefaultSubnetFile), "the daemon's --subnet-file (this node's subnet)")
	metricsAddr := fs.String("metrics-addr", envOr("FLANNELD_METRICS_ADDR", "127.0.0.1:9473"), "the daemon's --metrics-addr (underlay addresses for the baseline)")
	port := fs.Int("port", podbench.DefaultPort, "echo port (TCP and UDP); the stream sink uses the next one")
	var peers listFlag
	fs.Var(&peers, "peer", "a peer's pod subnet, e.g. 10.244.5.0/24 (repeatable)")
	roundTrips := fs.Int("round-trips", 2000, "timed round trips per path and protocol")
	warmup := fs.Int("warmup", 200, "untimed round trips first")
	payload := fs.Int("payload", 64, "bytes per request and response")
	throughput := fs.Duration("throughput", 3*time.Second, "one TCP stream per path for this long (0: none)")
	out := fs.String("out", "", "write report.md, report.json, rtt.csv and latency.svg into this directory (default: Markdown on stdout)")
	if err := fs.Parse(args); err != nil {
		return exitCodeFor(err)
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "overlayd bench: %v\n", err); return 1 }
	if *port < 1 || *port > 65534 {
		return fail(fmt.Errorf("--port: %d is out of range 1..65534", *port))
	}
	env, err := subnet.ReadSubnetFile(*subnetFile)
	if err != nil {
		return fail(fmt.Errorf("this node's subnet: %w", err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *serve {
		return benchServe(ctx, env.Subnet.Masked(), *metricsAddr, uint16(*port), *duration, stdout, fail)
	}
	o := podbench.Options{Subnet: env.Subnet.Masked(), Port: uint16(*port), RoundTrips: *roundTrips, Warmup: *warmup,
		Payload: *payload, Throughput: *throughput, Command: "overlayd bench " + strings.Join(args, " ")}
	if o.Peers, err = benchPeers(peers, *metricsAddr); err != nil {
		return fail(err)
	}
	rep, err := podbench.Run(ctx, o)
	if err != nil {
		return fail(err)
	}
	if *out != "" {
		files, err := report.WriteDir(*out, rep)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, strings.Join(files, "\n"))
	} else if err := report.WriteMarkdown(stdout, rep, 1); err != nil {
		return fail(err)
	}
	for _, a := range rep.Agents {
		if a.Error != "" {
			return 1
		}
	}
	return 0
}

func benchServe(ctx context.Context, sn netip.Prefix, metricsAddr string, port uint16, d time.Duration, stdout io.Writer, fail func(error) int) int {
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	var underlay netip.Addr
	if doc, err := (doctorFlags{metricsAddr: metricsAddr, timeout: 2 * time.Second}).readStatus(); err == nil {
		underlay, _ = netip.ParseAddr(doc.Underlay.Bind)
	}
	err := podbench.Serve(ctx, sn, underlay, port, func(pod netip.Addr) {
		fmt.Fprintf(stdout, "serving: bench pod %s, node %s, port %d (tcp/udp echo) and %d (stream)\n", pod, underlay, port, port+1)
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return fail(err)
	}
	return 0
}

// benchPeers parses --peer; the underlay addresses come from the
// daemon's /status when it runs.
func benchPeers(raw []string, metricsAddr string) ([]podbench.Peer, error) {
	if len(raw) == 0 {
		return nil, errors.New("--peer: give at least one peer pod subnet")
	}
	under := map[netip.Prefix]netip.Addr{}
	if doc, err := (doctorFlags{metricsAddr: metricsAddr, timeout: 2 * time.Second}).readStatus(); err == nil && doc.Sync != nil {
		for _, p := range doc.Sync.Peers {
			s, err1 := netip.ParsePrefix(p.Subnet)
			a, err2 := netip.ParseAddr(p.Dst)
			if err1 == nil && err2 == nil {
				under[s] = a
			}
		}
	}
	var out []podbench.Peer
	for _, r := range raw {
		p, err := netip.ParsePrefix(r)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("--peer: %q is not an IPv4 pod subnet", r)
		}
		out = append(out, podbench.Peer{Subnet: p.Masked(), Underlay: under[p.Masked()]})
	}
	return out, nil
}
