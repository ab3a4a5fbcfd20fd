// Command podlat measures pod-to-pod latency and throughput of
// flannel-compatible agents in a virtual cluster on one machine, against
// the underlay as a baseline, and writes a readable report.
//
// As root, from the repository root:
//
//	go run ./bench/podlat [-nodes 3] [-pods 2] [-count 2000] [-agent overlayd] [-agent 'name=TEMPLATE' ...]
//
// For each agent in turn it starts a fresh etcd and a fresh lab
// (internal/lab: -nodes node namespaces on one flat underlay, -pods pod
// namespaces per node on a cni0 bridge configured from the agent's
// subnet.env), runs the agent on every node and waits until every pod
// reaches every other. It then times request/response round trips over
// TCP and UDP (an echo server and a client, both in this process, their
// sockets in the two namespaces) and one TCP stream (iperf3 when
// installed) on three paths: pod to pod on one node, pod to pod across
// nodes over the overlay, and node to node on the underlay. The report
// (report.md, report.json, rtt.csv, latency.svg) goes to -out. Every
// namespace and process is removed at the end, on failure and on
// SIGINT/SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/report"
	"github.com/overlayd/overlayd/internal/cmdmain"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

func main() {
	cmdmain.Run("podlat", parseFlags, func(ctx context.Context, c config, out io.Writer) error {
		return run(ctx, c, out, newLogger(os.Stderr, c.verbose))
	})
}

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// run benchmarks every agent in turn and writes the report, also a
// partial one after a failure or an interrupt.
func run(ctx context.Context, c config, out io.Writer, log *slog.Logger) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, veths, iptables inside them)")
	}
	if removed := netnsutil.RemoveStale(); len(removed) > 0 {
		log.Info("removed stale namespaces of dead runs", "count", len(removed))
	}
	started := time.Now()
	tmp, err := os.MkdirTemp("", "podlat-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	s, err := prepare(ctx, c, tmp, started, log)
	if err != nil {
		return err
	}
	rep := report.Report{
		Started: started,
		Command: reproduceCommand(c.args),
		Machine: describeMachine(s.iperf3),
		Params:  c.params(s.tool),
	}
	var runErr error
	for _, a := range c.agents {
		result, err := benchAgent(ctx, c, a, s, log)
		rep.Agents = append(rep.Agents, result)
		if err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("agent %s: %w", a.Name, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	rep.Finished = time.Now()
	files, err := report.WriteDir(s.outDir, rep)
	if err != nil {
		return errors.Join(runErr, err)
	}
	if err := report.WriteMarkdown(out, rep, 1); err != nil {
		return errors.Join(runErr, err)
	}
	fmt.Fprintf(out, "\nReport files (agent logs in %s):\n  %s\n", filepath.Join(s.outDir, "logs"), strings.Join(files, "\n  "))
	return runErr
}

// benchAgent measures one agent in a lab of its own, removed before it
// returns.
func benchAgent(ctx context.Context, c config, a agentSpec, s setup, log *slog.Logger) (result report.Agent, err error) {
	result = report.Agent{Name: a.Name, Template: a.Template}
	defer func() {
		if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			// A cut-short dial or exec says "canceled" in its own words.
			err = fmt.Errorf("interrupted: %w (%v)", ctx.Err(), err)
		}
		if err != nil {
			result.Error = err.Error()
		}
	}()
	log.Info("starting lab", "agent", a.Name, "nodes", c.nodes, "pods_per_node", c.pods)
	cl, err := startCluster(ctx, c, a, s.bin, filepath.Join(s.outDir, "logs", a.Name), log)
	if err != nil {
		return result, err
	}
	defer func() {
		if cerr := cl.Close(); cerr != nil {
			log.Warn("lab teardown", "agent", a.Name, "err", cerr)
		}
	}()
	result.Paths, err = s.m.measure(ctx, a.Name, benchPaths(cl.lab))
	return result, err
}
