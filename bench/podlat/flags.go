package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
)

// Throughput modes (-throughput).
const (
	throughputAuto    = "auto"    // iperf3 when installed, else builtin
	throughputIperf3  = "iperf3"  // iperf3 or fail
	throughputBuiltin = "builtin" // the in-process stream
	throughputOff     = "off"
)

// config is the run's settings after flag parsing and validation.
type config struct {
	nodes, pods int
	roundTrips  int
	warmup      int
	payload     int
	udpTimeout  time.Duration
	throughput  string
	duration    time.Duration // of each throughput stream
	agents      []agentSpec
	overlayd    string // prebuilt binary for {{.Bin}}; "" builds ./cmd/overlayd
	flanneld    string // binary for {{.Flanneld}}; "" when none was found
	out         string // report directory; "" picks bench/out/podlat-<time>
	startWait   time.Duration
	verbose     bool
	// args are the command-line arguments, for the report's command.
	args []string
}

// agentFlags collects repeated -agent values.
type agentFlags []string

func (a *agentFlags) String() string     { return strings.Join(*a, " ") }
func (a *agentFlags) Set(v string) error { *a = append(*a, v); return nil }

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("podlat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(fs, stderr) }
	c := config{args: args}
	var agents agentFlags
	fs.IntVar(&c.nodes, "nodes", 3, "nodes in the virtual cluster (K, at least 2)")
	fs.IntVar(&c.pods, "pods", 2, "pods per node (M; the same-node path needs 2)")
	fs.IntVar(&c.roundTrips, "count", 2000, "timed round trips per path and protocol")
	fs.IntVar(&c.warmup, "warmup", 200, "untimed round trips before the timed ones")
	fs.IntVar(&c.payload, "payload", 64, "bytes per request and per response")
	fs.DurationVar(&c.udpTimeout, "udp-timeout", time.Second, "a UDP round trip without answer after this counts as lost")
	fs.StringVar(&c.throughput, "throughput", throughputAuto, "throughput tool: auto (iperf3 when installed, else builtin), iperf3, builtin or off")
	fs.DurationVar(&c.duration, "duration", 3*time.Second, "length of each throughput stream")
	fs.Var(&agents, "agent", "agent to benchmark, repeatable: overlayd, flanneld, or name=TEMPLATE (see below); default: overlayd, and flanneld when its binary is there")
	fs.StringVar(&c.overlayd, "overlayd", "", "overlayd binary for {{.Bin}} (default: build ./cmd/overlayd of this tree)")
	fs.StringVar(&c.out, "out", "", "report directory (default: bench/out/podlat-<date>-<time> in this tree)")
	fs.DurationVar(&c.startWait, "start-timeout", 90*time.Second, "how long the agents get to write their subnet files and connect every pod")
	fs.StringVar(&c.flanneld, "flanneld", "", "flanneld binary for {{.Flanneld}} (default: $OVERLAYD_FLANNELD or the one scripts/flanneld.sh builds)")
	fs.BoolVar(&c.verbose, "v", false, "log every step of the lab")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, reportErr(stderr, fmt.Errorf("unexpected arguments %q (quote each -agent template)", fs.Args()))
	}
	if c.flanneld == "" {
		c.flanneld, _ = lab.FlanneldBinary() // absent: the flanneld agent is not offered by default
	}
	if len(agents) == 0 {
		agents = agentFlags{defaultAgentName}
		if c.flanneld != "" {
			agents = append(agents, flanneldAgentName)
		}
	}
	if err := c.setAgents(agents); err != nil {
		return c, reportErr(stderr, err)
	}
	return c, reportErr(stderr, c.validate())
}

func (c *config) setAgents(values []string) error {
	seen := make(map[string]bool)
	for _, v := range values {
		a, err := parseAgentSpec(v)
		if err != nil {
			return fmt.Errorf("-agent %q: %w", v, err)
		}
		if seen[a.Name] {
			return fmt.Errorf("-agent %q: name %q is used twice (prefix each template with a name=)", v, a.Name)
		}
		seen[a.Name] = true
		c.agents = append(c.agents, a)
	}
	return nil
}

func (c config) validate() error {
	switch {
	case c.nodes < 2 || c.nodes > lab.MaxNodes:
		return fmt.Errorf("-nodes %d: want 2..%d (the overlay needs two nodes)", c.nodes, lab.MaxNodes)
	case c.pods < 1 || c.pods > 250:
		return fmt.Errorf("-pods %d: want 1..250", c.pods)
	case c.roundTrips < 1:
		return fmt.Errorf("-count %d: want at least 1", c.roundTrips)
	case c.warmup < 0:
		return fmt.Errorf("-warmup %d: want 0 or more", c.warmup)
	case c.payload < 1 || c.payload > 1400:
		return fmt.Errorf("-payload %d: want 1..1400 (one packet inside the overlay MTU)", c.payload)
	case c.udpTimeout <= 0:
		return fmt.Errorf("-udp-timeout %s: want > 0", c.udpTimeout)
	case c.duration <= 0:
		return fmt.Errorf("-duration %s: want > 0", c.duration)
	case c.startWait <= 0:
		return fmt.Errorf("-start-timeout %s: want > 0", c.startWait)
	}
	switch c.throughput {
	case throughputAuto, throughputIperf3, throughputBuiltin, throughputOff:
		return nil
	}
	return fmt.Errorf("-throughput %q: want auto, iperf3, builtin or off", c.throughput)
}

func reportErr(stderr io.Writer, err error) error {
	if err != nil {
		fmt.Fprintf(stderr, "podlat: %v\n", err)
	}
	return err
}

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, `Usage: go run ./bench/podlat [flags]   (as root)

Builds a virtual cluster of -nodes nodes with -pods pods each in network
namespaces, runs each -agent on every node, and measures pod-to-pod
latency on one node and across nodes, against the node-to-node underlay.

Flags:
`)
	fs.PrintDefaults()
	fmt.Fprintf(w, `
An agent template is a command line in Go template syntax, rendered per
node and split into words like a shell would (quotes, no expansion).
Fields: {{.Bin}} {{.Flanneld}} {{.Etcd}} {{.Iface}} {{.PublicIP}} {{.SubnetFile}}
{{.Node}} {{.Prefix}}. The default, -agent overlayd, is
  overlayd=%s
To compare with an upstream flanneld in the same run:
  -agent overlayd -agent 'flanneld=/usr/local/bin/flanneld --etcd-endpoints={{.Etcd}}
      --etcd-prefix={{.Prefix}} --iface={{.Iface}} --public-ip={{.PublicIP}}
      --subnet-file={{.SubnetFile}} --ip-masq'
`, defaultTemplate)
}
