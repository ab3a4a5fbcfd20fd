package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/subnet"
)

const (
	// pingRounds × pingPause bounds how long the pods get to reach each
	// other once every subnet file is written (on top of -start-timeout).
	pingRounds = 60
	pingPause  = 500 * time.Millisecond
	agentTail  = 15
)

// cluster is one agent's lab: a fresh etcd and a fresh virtual cluster.
type cluster struct {
	etcd *etcdtest.Server
	lab  *lab.Lab
}

// startCluster starts etcd and the lab, runs the agent on every node,
// adds the pods and waits until every pod reaches every other pod. The
// work dir holds the agents' logs; it is emptied first.
func startCluster(ctx context.Context, c config, agent agentSpec, bin, workDir string, log *slog.Logger) (*cluster, error) {
	if err := os.RemoveAll(workDir); err != nil {
		return nil, fmt.Errorf("clear agent work dir: %w", err)
	}
	etcd, err := etcdtest.Start(ctx, etcdtest.Options{})
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	cl := &cluster{etcd: etcd}
	labLog := slog.New(slog.DiscardHandler)
	if c.verbose {
		labLog = log
	}
	cl.lab, err = lab.New(ctx, lab.Options{
		Nodes: c.nodes, PodsPerNode: c.pods, Topology: lab.Flat,
		EtcdEndpoint: etcd.Endpoint(), WorkDir: workDir, Logger: labLog, CNIPlugin: bin,
	})
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("build lab: %w", err)
	}
	if err := cl.bringUp(ctx, c, agent, bin, log); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

func (cl *cluster) bringUp(ctx context.Context, c config, agent agentSpec, bin string, log *slog.Logger) error {
	l := cl.lab
	if err := l.WriteConfig(ctx, l.ConfigJSON()); err != nil {
		return err
	}
	for _, n := range l.Nodes {
		argv, err := agent.argv(nodeData(l, n, bin, c.flanneld))
		if err != nil {
			return err
		}
		if _, err := l.StartAgent(ctx, n, argv); err != nil {
			return err
		}
		log.Debug("agent started", "agent", agent.Name, "node", n.Name, "argv", argv)
	}
	waitCtx, cancel := context.WithTimeout(ctx, c.startWait)
	defer cancel()
	for _, n := range l.Nodes {
		if _, err := l.WaitSubnetFile(waitCtx, n); err != nil {
			if waitCtx.Err() != nil && ctx.Err() == nil {
				return fmt.Errorf("%w%s", err, cl.agentLogs())
			}
			return err
		}
		if err := l.AddPods(ctx, n); err != nil {
			return err
		}
	}
	log.Info("subnet files written, pods added; waiting for every pod to reach every other", "agent", agent.Name, "pods", len(l.AllPods()))
	m, err := l.PingAllRetry(ctx, pingRounds, pingPause)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("pods do not reach each other over %s: %w\n%s%s", agent.Name, err, m, cl.agentLogs())
	}
	return nil
}

func nodeData(l *lab.Lab, n *lab.Node, bin, flanneld string) templateData {
	return templateData{
		Bin:        bin,
		Flanneld:   flanneld,
		Etcd:       l.EtcdURL,
		Iface:      n.Iface,
		PublicIP:   n.PublicIP.String(),
		SubnetFile: n.SubnetFile,
		Node:       n.Name,
		Prefix:     subnet.DefaultPrefix,
	}
}

// agentLogs is the end of every node's agent log.
func (cl *cluster) agentLogs() string {
	var b strings.Builder
	for _, n := range cl.lab.Nodes {
		if a := cl.lab.Agent(n); a != nil {
			fmt.Fprintf(&b, "\n--- %s (%s):\n%s\n", n.Name, a.LogPath, a.LogTail(agentTail))
		}
	}
	return b.String()
}

// Close removes every namespace and process of the lab, then etcd.
func (cl *cluster) Close() error {
	var errs []error
	if cl.lab != nil {
		errs = append(errs, cl.lab.Close())
	}
	if cl.etcd != nil {
		errs = append(errs, cl.etcd.Stop())
	}
	return errors.Join(errs...)
}
