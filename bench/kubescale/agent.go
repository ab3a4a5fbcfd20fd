package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/overlayd/overlayd/bench/internal/benchns"
	"github.com/overlayd/overlayd/bench/internal/benchrun"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// agentSpec is one agent run: which binary, with what environment.
type agentSpec struct {
	name string
	env  []string
	argv []string
}

// agentResult is one agent's convergence at N.
type agentResult struct {
	Agent string   `json:"agent"`
	Env   []string `json:"env,omitempty"`
	// Converged: all 3N entries were in the kernel within the timeout.
	Converged bool    `json:"converged"`
	Seconds   float64 `json:"seconds"`
	// Entries is the last kernel count seen.
	Entries    benchns.Counts `json:"entries"`
	PeakRSSMiB float64        `json:"peak_rss_mib"`
	RSSMiB     float64        `json:"rss_mib"`
	Note       string         `json:"note,omitempty"`
}

// agents are the runs at one N: overlayd, then flanneld with its default
// event queue and, if that hangs, with one large enough for N.
func (c *cluster) agents() []agentSpec {
	n := c.node
	common := []string{
		"--kube-subnet-mgr", "--kubeconfig-file=" + c.kubeconfig, "--net-config-path=" + c.netConf,
		"--iface=" + n.Iface, "--subnet-file=" + n.SubnetFile, "--ip-masq",
		"--healthz-ip=" + n.UnderlayIP.String(),
	}
	nodeEnv := "NODE_NAME=" + n.Name
	specs := []agentSpec{
		{name: "overlayd", env: append([]string{nodeEnv}, c.cfg.env...),
			argv: append(append([]string{c.cfg.bin}, common...), "--healthz-port="+strconv.Itoa(lab.HealthzPort))},
		{name: "overlayd, etcd mode", env: append([]string{nodeEnv}, c.cfg.env...),
			argv: lab.OverlaydArgs(c.cfg.bin, c.lab, n)},
	}
	if c.cfg.baseline != "" {
		specs = append(specs, agentSpec{name: "overlayd baseline", env: append([]string{nodeEnv}, c.cfg.env...),
			argv: append(append([]string{c.cfg.baseline}, common...), "--healthz-port="+strconv.Itoa(lab.HealthzPort))})
	}
	if c.cfg.flanneld != "" {
		argv := append(append([]string{c.cfg.flanneld}, common...), "--healthz-port="+strconv.Itoa(lab.FlanneldHealthzPort))
		specs = append(specs,
			agentSpec{name: "flanneld", env: []string{nodeEnv}, argv: argv},
			agentSpec{name: "flanneld", env: []string{nodeEnv, "EVENT_QUEUE_DEPTH=100000"}, argv: argv})
	}
	return specs
}

// convergePoll is how often the kernel is dumped while an agent converges.
const convergePoll = 50 * time.Millisecond

// measure starts the agent over a clean node and times it until the
// kernel holds all 3n entries, then stops it and cleans the node.
func (c *cluster) measure(ctx context.Context, a agentSpec, n int) (agentResult, error) {
	res := agentResult{Agent: a.name, Env: a.env[1:]}
	if err := c.resetNode(ctx); err != nil {
		return res, err
	}
	argv := append(append([]string{"env"}, a.env...), a.argv...)
	start := time.Now()
	agent, err := c.lab.StartAgent(ctx, c.node, argv)
	if err != nil {
		return res, err
	}
	defer func() {
		agent.Stop(syscall.SIGTERM)
		c.resetNode(context.Background())
	}()
	deadline := time.Now().Add(c.cfg.timeout)
	for time.Now().Before(deadline) {
		if agent.Exited() {
			res.Note = fmt.Sprintf("exited (%v): %s", agent.Wait(), lastLine(agent.LogTail(5)))
			return res, nil
		}
		counts, err := countEntries(c.node.NS)
		if err == nil {
			res.Entries = counts
			if counts.Neighbours >= n && counts.FDB >= n && counts.Routes >= n {
				res.Converged, res.Seconds = true, time.Since(start).Seconds()
				break
			}
		}
		if err := benchrun.Sleep(ctx, convergePoll); err != nil {
			return res, err
		}
	}
	if !res.Converged {
		res.Seconds = time.Since(start).Seconds()
		res.Note = fmt.Sprintf("not converged after %s", c.cfg.timeout)
	}
	res.PeakRSSMiB, res.RSSMiB = memoryOf(agent.Pid())
	if c.cfg.logs != "" {
		c.keepLog(agent, fmt.Sprintf("%s-n%d-%d.log", strings.ReplaceAll(strings.Fields(a.name)[0], ",", ""), n, len(a.env)))
	}
	return res, nil
}

func countEntries(ns string) (benchns.Counts, error) {
	h, err := netnsutil.Handle(ns)
	if err != nil {
		return benchns.Counts{}, err
	}
	defer h.Close()
	link, err := h.LinkByName(lab.FlannelDevice)
	if err != nil {
		return benchns.Counts{}, err
	}
	return benchns.CountEntries(h, link.Attrs().Index)
}

// memoryOf is a process's peak and current resident set, in MiB.
func memoryOf(pid int) (peak, now float64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kib, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmHWM:":
			peak = kib / 1024
		case "VmRSS:":
			now = kib / 1024
		}
	}
	return peak, now
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// keepLog copies the agent's log (so far) into the -logs directory.
func (c *cluster) keepLog(a *lab.Agent, name string) {
	data, err := os.ReadFile(a.LogPath)
	if err == nil {
		err = os.WriteFile(filepath.Join(c.cfg.logs, name), data, 0o644)
	}
	if err != nil {
		c.log.Warn("cannot keep the agent's log", "err", err)
	}
}
