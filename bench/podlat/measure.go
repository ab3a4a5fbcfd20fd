package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/nsnet"
	"github.com/overlayd/overlayd/bench/podlat/report"
	"github.com/overlayd/overlayd/bench/podlat/rtt"
	"github.com/overlayd/overlayd/bench/podlat/stream"
	"github.com/overlayd/overlayd/internal/lab"
)

// benchPath is one measured path: a client end and a server end.
type benchPath struct {
	id       string
	from, to nsnet.Endpoint
}

// benchPaths picks one representative pair per path: node0's first two
// pods (same node), node0's and node1's first pods (across nodes) and
// node0's and node1's underlay addresses. Paths the lab cannot offer
// (one pod per node) are left out.
func benchPaths(l *lab.Lab) []benchPath {
	n0, n1 := l.Nodes[0], l.Nodes[1]
	var paths []benchPath
	if len(n0.Pods) >= 2 {
		paths = append(paths, benchPath{report.PathSameNode, podEnd(n0.Pods[0]), podEnd(n0.Pods[1])})
	}
	if len(n0.Pods) >= 1 && len(n1.Pods) >= 1 {
		paths = append(paths, benchPath{report.PathCrossNode, podEnd(n0.Pods[0]), podEnd(n1.Pods[0])})
	}
	paths = append(paths, benchPath{report.PathUnderlay, nodeEnd(n0), nodeEnd(n1)})
	return paths
}

func podEnd(p *lab.Pod) nsnet.Endpoint { return nsnet.Endpoint{Name: p.Name, NS: p.NS, IP: p.IP} }
func nodeEnd(n *lab.Node) nsnet.Endpoint {
	return nsnet.Endpoint{Name: n.Name, NS: n.NS, IP: n.UnderlayIP}
}

// measurer runs the measurements of one run's settings.
type measurer struct {
	rtt    rtt.Options
	stream *stream.Options // nil: no throughput
	log    *slog.Logger
}

// interleaveBlock is how many round trips a path gets before the next
// path's turn.
const interleaveBlock = 100

// measure fills paths with every latency result, then every throughput
// result (streams last, so that they never load a latency run). On
// error the paths are returned with what was measured so far.
func (m measurer) measure(ctx context.Context, agent string, bps []benchPath) ([]report.Path, error) {
	paths := make([]report.Path, len(bps))
	for i, bp := range bps {
		paths[i] = report.Path{ID: bp.id, From: bp.from.String(), To: bp.to.String()}
	}
	for _, proto := range rtt.Protocols() {
		m.log.Info("measuring latency", "agent", agent, "protocol", proto, "paths", len(bps), "round_trips", m.rtt.RoundTrips)
		results, err := m.interleaved(ctx, proto, bps)
		if err != nil {
			return paths, err
		}
		for i, res := range results {
			paths[i].Latency = append(paths[i].Latency, report.LatencyOf(res))
		}
	}
	if m.stream == nil {
		return paths, nil
	}
	for i, bp := range bps {
		m.log.Info("measuring throughput", "agent", agent, "path", bp.id, "duration", m.stream.Duration)
		res, err := stream.Measure(ctx, bp.from, bp.to, *m.stream)
		if err != nil {
			return paths, fmt.Errorf("%s path: %w", bp.id, err)
		}
		paths[i].Throughput = report.ThroughputOf(res)
	}
	return paths, nil
}

// interleaved opens a session per path and gives each path, in turn, a
// block of round trips until every path has m.rtt.RoundTrips: load from
// elsewhere on the machine falls on every path alike.
func (m measurer) interleaved(ctx context.Context, proto rtt.Protocol, bps []benchPath) ([]rtt.Result, error) {
	sessions := make([]*rtt.Session, 0, len(bps))
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	results := make([]rtt.Result, len(bps))
	for i, bp := range bps {
		s, err := rtt.Open(ctx, proto, bp.from, bp.to, m.rtt)
		if err != nil {
			return nil, fmt.Errorf("%s path: %w", bp.id, err)
		}
		sessions = append(sessions, s)
		results[i] = rtt.Result{Protocol: proto, RTTs: make([]time.Duration, 0, m.rtt.RoundTrips)}
	}
	for done := 0; done < m.rtt.RoundTrips; done += interleaveBlock {
		n := min(interleaveBlock, m.rtt.RoundTrips-done)
		for i, s := range sessions {
			if err := s.Run(ctx, n, &results[i]); err != nil {
				return nil, fmt.Errorf("%s path: %w", bps[i].id, err)
			}
		}
	}
	return results, nil
}
