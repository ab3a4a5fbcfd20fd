package podbench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/nsnet"
	"github.com/overlayd/overlayd/bench/podlat/report"
	"github.com/overlayd/overlayd/bench/podlat/rtt"
	"github.com/overlayd/overlayd/bench/podlat/stream"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// Peer is one peer to measure: its pod subnet (its bench pod is at the
// server address of it) and, for the baseline, its underlay address.
type Peer struct {
	Subnet   netip.Prefix
	Underlay netip.Addr
}

// Options shape a run.
type Options struct {
	Subnet     netip.Prefix // this node's
	Peers      []Peer
	Port       uint16
	RoundTrips int
	Warmup     int
	Payload    int
	Throughput time.Duration // 0: no throughput
	Command    string
}

// Run measures every peer from a bench pod on this node and returns the
// report (one agent per peer: cross-node pod to pod, and node to node
// when the peer's underlay address is known). It removes its pod.
func Run(ctx context.Context, o Options) (report.Report, error) {
	rep := report.Report{Started: time.Now(), Command: o.Command, Machine: machine(), Params: report.Params{
		Nodes: len(o.Peers) + 1, PodsPerNode: 1, Topology: "real cluster", RoundTrips: o.RoundTrips, Warmup: o.Warmup,
		PayloadBytes: o.Payload, ThroughputSeconds: o.Throughput.Seconds(),
	}}
	if o.Throughput > 0 {
		rep.Params.ThroughputTool = stream.ToolBuiltin
	}
	pod, err := NewPod(o.Subnet, PodAddr(o.Subnet, false))
	if err != nil {
		return rep, err
	}
	defer pod.Close()
	from := nsnet.Endpoint{Name: "bench pod", NS: pod.NS, IP: pod.IP}
	for _, p := range o.Peers {
		a := report.Agent{Name: "overlayd → " + p.Subnet.String(), Template: "overlayd bench"}
		to := nsnet.Endpoint{Name: "peer bench pod", IP: PodAddr(p.Subnet, true)}
		path, err := measurePath(ctx, o, report.PathCrossNode, from, to)
		a.Paths = append(a.Paths, path)
		if err == nil && p.Underlay.IsValid() {
			var ul report.Path
			ul, err = measurePath(ctx, o, report.PathUnderlay, nsnet.Endpoint{Name: "this node"}, nsnet.Endpoint{Name: "peer node", IP: p.Underlay})
			a.Paths = append(a.Paths, ul)
		}
		if err != nil {
			a.Error = err.Error()
		}
		rep.Agents = append(rep.Agents, a)
	}
	rep.Finished = time.Now()
	return rep, nil
}

// measurePath: TCP and UDP round trips, then one stream, from from (its
// namespace; "" is the calling one) to to.IP.
func measurePath(ctx context.Context, o Options, id string, from, to nsnet.Endpoint) (report.Path, error) {
	path := report.Path{ID: id, From: from.String(), To: to.String()}
	ropts := rtt.Options{RoundTrips: o.RoundTrips, Warmup: o.Warmup, Payload: o.Payload}
	for _, proto := range rtt.Protocols() {
		conn, err := dial(ctx, from.NS, string(proto), netip.AddrPortFrom(to.IP, o.Port))
		if err != nil {
			return path, err
		}
		s, err := rtt.Dialed(ctx, proto, conn, from, to, ropts)
		if err != nil {
			return path, err
		}
		res := rtt.Result{Protocol: proto}
		err = s.Run(ctx, o.RoundTrips, &res)
		s.Close()
		if err != nil {
			return path, err
		}
		path.Latency = append(path.Latency, report.LatencyOf(res))
	}
	if o.Throughput <= 0 {
		return path, nil
	}
	conn, err := dial(ctx, from.NS, "tcp", netip.AddrPortFrom(to.IP, o.Port+1))
	if err != nil {
		return path, err
	}
	defer conn.Close()
	res, err := stream.MeasureRemote(ctx, conn.(*net.TCPConn), o.Throughput)
	if err != nil {
		return path, fmt.Errorf("stream %s -> %s: %w", from, to, err)
	}
	path.Throughput = report.ThroughputOf(res)
	return path, nil
}

// dial connects from inside ns ("": this namespace).
func dial(ctx context.Context, ns, network string, to netip.AddrPort) (net.Conn, error) {
	var conn net.Conn
	d := func() error {
		var err error
		conn, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, to.String())
		return err
	}
	var err error
	if ns == "" {
		err = d()
	} else {
		err = netnsutil.Do(ns, d)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s %s: %w", network, to, err)
	}
	return conn, nil
}

func machine() report.Machine {
	m := report.Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}
