// Command csumtrigger reproduces, in a lab on this machine, the condition
// under which VXLAN with tx checksum offload was known to corrupt packets
// (kube-proxy before 1.19 marks node-to-Service traffic and masquerades
// marked packets with --random-fully; the mark survives encapsulation and
// the outer VXLAN packet is masqueraded too), runs overlayd with each
// --tx-checksum-offload value, and reports the evidence: stalled or failed
// TCP connections, lost UDP datagrams, the kernel's checksum error
// counters, and what tcpdump says of the outer packets' UDP checksums.
//
// As root, from the repository root:
//
//	go run ./bench/csumtrigger [-topology flat,nat] [-offload auto,on,off] [-trigger=false] [-conns 40] [-out report.md]
//
// Every namespace and process is removed at the end, also on failure and
// on SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/internal/cmdmain"
	"github.com/overlayd/overlayd/internal/csumtrigger"
	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/offload"
)

type config struct {
	topologies []lab.Topology
	modes      []offload.Mode
	load       csumtrigger.Load
	wire       bool
	trigger    bool
	out        string
}

func main() { cmdmain.Run("csumtrigger", parseFlags, run) }

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("csumtrigger", flag.ContinueOnError)
	fs.SetOutput(stderr)
	topos := fs.String("topology", "flat,nat", "lab topologies to run: flat, nat (1:1 NAT routers)")
	modes := fs.String("offload", "auto,on,off", "--tx-checksum-offload values to run overlayd with")
	c := config{}
	fs.IntVar(&c.load.Conns, "conns", 40, "TCP connections through the Service, one after another")
	fs.IntVar(&c.load.Bytes, "bytes", 1<<20, "bytes sent on each connection")
	fs.DurationVar(&c.load.StallAfter, "stall-after", time.Second, "a connection slower than this counts as stalled")
	fs.DurationVar(&c.load.ConnLimit, "conn-limit", 15*time.Second, "a connection not done by then has failed")
	fs.IntVar(&c.load.Datagrams, "datagrams", 2000, "UDP datagrams through the Service")
	fs.IntVar(&c.load.DatagramSz, "datagram-size", 1200, "UDP datagram size")
	fs.BoolVar(&c.wire, "wire-checksums", true, "finish checksums on the underlay veths as a NIC does (else a veth hides corrupted checksums)")
	fs.StringVar(&c.out, "out", "", "also write the Markdown report here")
	fs.BoolVar(&c.trigger, "trigger", true, "install the kube-proxy <1.19 mark + masquerade rules (false: a control run without them)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, s := range strings.Split(*topos, ",") {
		t, err := lab.ParseTopology(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintf(stderr, "-topology: %v\n", err)
			return c, err
		}
		c.topologies = append(c.topologies, t)
	}
	for _, s := range strings.Split(*modes, ",") {
		m, err := offload.ParseMode(s)
		if err != nil {
			fmt.Fprintf(stderr, "-offload: %v\n", err)
			return c, err
		}
		c.modes = append(c.modes, m)
	}
	return c, nil
}

type row struct {
	topology lab.Topology
	mode     offload.Mode
	res      csumtrigger.Result
	err      error
}

func run(ctx context.Context, c config, out io.Writer) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, iptables inside them)")
	}
	if err := csumtrigger.HaveTools(); err != nil {
		return err
	}
	netnsutil.RemoveStale()
	tmp, err := os.MkdirTemp("", "csumtrigger-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, err := lab.BuildOverlayd(ctx, tmp)
	if err != nil {
		return err
	}
	var rows []row
	for _, topo := range c.topologies {
		for _, mode := range c.modes {
			fmt.Fprintf(os.Stderr, "csumtrigger: %s topology, --tx-checksum-offload=%s ...\n", topo, mode)
			res, err := runOne(ctx, c, topo, mode, bin, tmp)
			rows = append(rows, row{topo, mode, res, err})
			if ctx.Err() != nil {
				break
			}
		}
	}
	report := markdown(c, rows)
	fmt.Fprint(out, report)
	if c.out != "" {
		if err := os.WriteFile(c.out, []byte(report), 0o644); err != nil {
			return err
		}
	}
	for _, r := range rows {
		if r.err != nil {
			return fmt.Errorf("%s/%s: %w", r.topology, r.mode, r.err)
		}
	}
	return nil
}

// runOne brings up a two-node lab with overlayd in mode and runs the
// scenario from node0's host namespace to node1's pod.
func runOne(ctx context.Context, c config, topo lab.Topology, mode offload.Mode, bin, tmp string) (csumtrigger.Result, error) {
	etcd, err := etcdtest.Start(ctx, etcdtest.Options{})
	if err != nil {
		return csumtrigger.Result{}, err
	}
	defer etcd.Stop()
	dir, err := os.MkdirTemp(tmp, fmt.Sprintf("%s-%s-", topo, mode))
	if err != nil {
		return csumtrigger.Result{}, err
	}
	l, err := lab.New(ctx, lab.Options{Nodes: 2, PodsPerNode: 1, Topology: topo, EtcdEndpoint: etcd.Endpoint(),
		WorkDir: dir, Logger: slog.New(slog.DiscardHandler), CNIPlugin: bin})
	if err != nil {
		return csumtrigger.Result{}, err
	}
	defer l.Close()
	if err := l.WriteConfig(ctx, l.ConfigJSON()); err != nil {
		return csumtrigger.Result{}, err
	}
	for _, n := range l.Nodes {
		argv := lab.OverlaydArgs(bin, l, n, "--ip-masq", "--tx-checksum-offload="+string(mode))
		if _, err := l.StartAgent(ctx, n, argv); err != nil {
			return csumtrigger.Result{}, err
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, n := range l.Nodes {
		if _, err := l.WaitSubnetFile(waitCtx, n); err != nil {
			return csumtrigger.Result{}, err
		}
		if err := l.AddPods(ctx, n); err != nil {
			return csumtrigger.Result{}, err
		}
	}
	if m, err := l.PingAllRetry(ctx, 60, 500*time.Millisecond); err != nil {
		return csumtrigger.Result{}, fmt.Errorf("pods do not reach each other: %w\n%s", err, m)
	}
	return csumtrigger.Run(ctx, csumtrigger.Scenario{
		Client: l.Nodes[0], Server: l.Nodes[1], Backend: l.Nodes[1].Pods[0],
		VIP: netip.MustParseAddrPort("10.96.0.10:80"), BackendPort: 8080, VXLANPort: backend.DeviceDefaultPort,
		Load: c.load, WireChecksums: c.wire, NoTrigger: !c.trigger, WorkDir: dir,
	})
}

func markdown(c config, rows []row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kernel %s; node0's host -> Service VIP (kube-proxy <1.19 mark + MASQUERADE --random-fully) -> pod on node1; "+
		"%d TCP connections x %d bytes, %d UDP datagrams x %d bytes; checksums finished on the wire: %v; trigger rules installed: %v\n\n",
		kernelRelease(), c.load.Conns, c.load.Bytes, c.load.Datagrams, c.load.DatagramSz, c.wire, c.trigger)
	fmt.Fprintln(&b, "| topology | tx offload | TCP failed / stalled / total | slowest conn | UDP received / sent | UdpInCsumErrors (node1 / node0) | TcpInCsumErrors (node1 / node0) | outer UDP checksums seen by tcpdump: none / ok / bad | masquerade hits |")
	fmt.Fprintln(&b, "|---|---|---|---:|---|---|---|---|---:|")
	for _, r := range rows {
		if r.err != nil {
			fmt.Fprintf(&b, "| %s | %s | error: %v | | | | | | |\n", r.topology, r.mode, r.err)
			continue
		}
		x := r.res
		fmt.Fprintf(&b, "| %s | %s | %d / %d / %d | %s | %d / %d | %d / %d | %d / %d | %d / %d / %d | %d |\n",
			r.topology, r.mode, x.TCP.Failed, x.TCP.Stalled, x.TCP.Conns, x.TCP.Slowest.Round(time.Millisecond),
			x.UDP.Received, x.UDP.Sent, x.Server.UDPInCsumErrors, x.Client.UDPInCsumErrors,
			x.Server.TCPInCsumErrors, x.Client.TCPInCsumErrors, x.Outer.NoSum, x.Outer.SumOK, x.Outer.BadSum, x.Masqueraded)
	}
	return b.String()
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
