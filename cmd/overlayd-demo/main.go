// Command overlayd-demo builds overlayd, starts a throwaway etcd and a
// virtual cluster of network namespaces (internal/lab), runs overlayd on
// every node, adds pods, pings every pod from every other pod and prints
// what the overlay looks like. It needs root and tears everything down on
// exit, Ctrl-C and failure; it exits non-zero if any ping failed.
//
//	go run ./cmd/overlayd-demo [-nodes 3] [-pods 1] [-topology flat|nat] [-keep]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/overlayd/overlayd/internal/cmdmain"
	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

const (
	startTimeout  = 90 * time.Second
	pingAttempts  = 6
	pingRoundWait = 500 * time.Millisecond
)

type demoFlags struct {
	nodes    int
	pods     int
	topology lab.Topology
	keep     bool
	overlayd string
	verbose  bool
}

func main() { cmdmain.Run("overlayd-demo", parseFlags, run) }

func parseFlags(args []string, stderr io.Writer) (demoFlags, error) {
	fs := flag.NewFlagSet("overlayd-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f demoFlags
	topology := fs.String("topology", "flat", "underlay layout: flat (one L2) or nat (each node behind its own 1:1 NAT router)")
	fs.IntVar(&f.nodes, "nodes", 3, "number of nodes")
	fs.IntVar(&f.pods, "pods", 1, "pods per node")
	fs.BoolVar(&f.keep, "keep", false, "stay up after the report until Ctrl-C")
	fs.StringVar(&f.overlayd, "overlayd", "", "use this overlayd binary instead of building ./cmd/overlayd")
	fs.BoolVar(&f.verbose, "v", false, "log lab progress")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var err error
	if f.topology, err = lab.ParseTopology(*topology); err != nil {
		fmt.Fprintln(stderr, err)
		return f, err
	}
	return f, nil
}

// run does the whole demo; every deferred step tears down what the step
// before it built, whatever the outcome.
func run(ctx context.Context, f demoFlags, out io.Writer) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, veths, iptables inside them)")
	}
	if removed := netnsutil.RemoveStale(); len(removed) > 0 {
		fmt.Fprintf(out, "removed %d stale namespaces of dead runs\n", len(removed))
	}
	dir, err := os.MkdirTemp("", "overlayd-demo-")
	if err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	defer func() { finishWorkDir(out, dir, err) }()

	bin := f.overlayd
	if bin == "" {
		fmt.Fprintln(out, "building overlayd ...")
		if bin, err = buildOverlayd(ctx, dir); err != nil {
			return err
		}
	}
	etcd, err := etcdtest.Start(ctx, etcdtest.Options{})
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	defer etcd.Stop()

	l, err := lab.New(ctx, lab.Options{
		Nodes: f.nodes, PodsPerNode: f.pods, Topology: f.topology,
		EtcdEndpoint: etcd.Endpoint(), WorkDir: dir, Logger: logger(f.verbose), CNIPlugin: bin,
	})
	if err != nil {
		return fmt.Errorf("build lab: %w", err)
	}
	defer l.Close()

	if err := bringUp(ctx, l, bin, out); err != nil {
		return err
	}
	matrix, pingErr := l.PingAllRetry(ctx, pingAttempts, pingRoundWait)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	report(ctx, out, l, matrix)
	if pingErr != nil {
		return fmt.Errorf("%d of %d pings failed", len(matrix.Failures()), len(matrix.Results))
	}
	if f.keep {
		fmt.Fprintln(out, "\nall up; Ctrl-C to tear down")
		<-ctx.Done()
	}
	return nil
}

// bringUp writes the network config, starts overlayd on every node,
// waits for the subnet files and adds the pods.
func bringUp(ctx context.Context, l *lab.Lab, bin string, out io.Writer) error {
	if err := l.WriteConfig(ctx, l.ConfigJSON()); err != nil {
		return err
	}
	fmt.Fprintf(out, "config: %s\n", l.ConfigJSON())
	for _, n := range l.Nodes {
		if _, err := l.StartAgent(ctx, n, lab.OverlaydArgs(bin, l, n)); err != nil {
			return err
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for _, n := range l.Nodes {
		if _, err := l.WaitSubnetFile(waitCtx, n); err != nil {
			return err
		}
		if err := l.AddPods(ctx, n); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "%d nodes up, %d pods added\n", len(l.Nodes), len(l.AllPods()))
	return nil
}

func finishWorkDir(out io.Writer, dir string, err error) {
	if err != nil {
		fmt.Fprintf(out, "logs kept in %s\n", dir)
		return
	}
	os.RemoveAll(dir)
}

func logger(verbose bool) *slog.Logger {
	if !verbose {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
