package main

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/overlayd/overlayd/health"
	"github.com/overlayd/overlayd/peerset"
	"github.com/overlayd/overlayd/statusdoc"
)

// The responder answers at most this many probes per second (burst as
// many): 10,000 peers probing a rotating sample stay far below it.
const (
	healthAnswerRate  = 2000
	healthAnswerBurst = 2000
)

// healthPorts are the ports the VXLAN peer filter covers besides VXLAN's:
// the health responder's, when on (only peers probe it).
func (d *daemon) healthPorts() []int {
	if d.opts.healthPort == 0 {
		return nil
	}
	return []int{int(d.opts.healthPort)}
}

// healthProbes is the daemon's side of package health.
type healthProbes struct {
	table  *healthTable
	prober *health.Prober // nil until started (or when unavailable)
	opts   health.ProberOptions
}

// healthTable is the prober's view of the peer set: a peerset.Sink in
// front of the reconciler that keeps each peer's probe targets (the
// overlay address is the peer subnet's network address, its
// flannel.<VNI> address; the underlay one where its VXLAN goes).
var _ peerset.EarlySink = (*healthTable)(nil)

type healthTable struct {
	next  peerset.Sink
	mu    sync.Mutex
	peers map[netip.Prefix]health.Target
}

func targetOf(p peerset.Peer) (health.Target, bool) {
	if p.Keep != "" || !p.Subnet.IsValid() {
		return health.Target{}, false
	}
	return health.Target{Subnet: p.Subnet, Overlay: p.Subnet.Addr(), Underlay: p.Dst}, true
}

// ReplacePeers implements peerset.Sink.
func (t *healthTable) ReplacePeers(peers []peerset.Peer) {
	m := make(map[netip.Prefix]health.Target, len(peers))
	for _, p := range peers {
		if tg, ok := targetOf(p); ok {
			m[p.Subnet] = tg
		}
	}
	t.mu.Lock()
	t.peers = m
	t.mu.Unlock()
	t.next.ReplacePeers(peers)
}

// UpdatePeers implements peerset.Sink.
func (t *healthTable) UpdatePeers(changes []peerset.Change) {
	t.mu.Lock()
	for _, c := range changes {
		if tg, ok := targetOf(c.Peer); ok && !c.Removed {
			t.peers[c.Peer.Subnet] = tg
		} else if c.Removed || c.Peer.Keep == "" {
			delete(t.peers, c.Peer.Subnet)
		}
	}
	t.mu.Unlock()
	t.next.UpdatePeers(changes)
}

// UpdateEarlyPeers implements peerset.EarlySink: the peers of a first
// list still being read go on to the reconciler; the probes wait for the
// snapshot.
func (t *healthTable) UpdateEarlyPeers(changes []peerset.Change) {
	if es, ok := t.next.(peerset.EarlySink); ok {
		es.UpdateEarlyPeers(changes)
	}
}

// targets is the prober's Targets: a snapshot.
func (t *healthTable) targets() []health.Target {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]health.Target, 0, len(t.peers))
	for _, tg := range t.peers {
		out = append(out, tg)
	}
	return out
}

// healthSink puts the probe table between the peer set and next (the
// reconciler) when the probes are on.
func (d *daemon) healthSink(next peerset.Sink) peerset.Sink {
	if d.opts.healthPort == 0 {
		return next
	}
	t := &healthTable{next: next, peers: map[netip.Prefix]health.Target{}}
	d.mu.Lock()
	d.health = &healthProbes{table: t}
	d.mu.Unlock()
	return t
}

// startHealth starts the health responder on the bind address (the
// underlay probe's target) and the prober of the peers the reconciler
// programs (--health-port). Failing to open a socket is not fatal: the
// node then goes unprobed or unanswered, and doctor says so.
func (d *daemon) startHealth(g *group) {
	port := d.opts.healthPort
	if port == 0 {
		d.log.Info("health probes off (--health-port=0)")
		return
	}
	bind := netip.AddrPortFrom(d.choice.Addr, port)
	conn, err := health.Listen(bind)
	if err != nil {
		d.log.Warn("health responder unavailable; peers' underlay probes of this node go unanswered", "bind", bind, "err", err)
	} else {
		d.log.Info("health responder listening", "bind", bind)
		limit := health.NewLimiter(healthAnswerRate, healthAnswerBurst, time.Now)
		g.go_("health-responder", health.NewResponder(conn, limit, d.log).Run)
	}
	d.startProber(g)
}

func (d *daemon) startProber(g *group) {
	udp, err := health.ListenProber()
	if err != nil {
		d.log.Warn("health prober unavailable", "err", err)
		return
	}
	icmp, err := health.ListenICMP()
	if err != nil {
		udp.Close()
		d.log.Warn("health prober unavailable (the overlay probe needs a raw ICMP socket: CAP_NET_RAW)", "err", err)
		return
	}
	if d.health == nil {
		udp.Close()
		icmp.Close()
		return
	}
	o := health.ProberOptions{
		Targets: d.health.table.targets, Port: d.opts.healthPort, Interval: d.opts.healthInterval,
		Sample: d.opts.healthSample, Conn: udp, ICMP: icmp, Logger: d.log, Registerer: d.reg,
	}
	p, err := health.NewProber(o)
	if err != nil {
		udp.Close()
		icmp.Close()
		d.log.Warn("health prober unavailable", "err", err)
		return
	}
	d.mu.Lock()
	d.health.prober, d.health.opts = p, o
	d.mu.Unlock()
	g.go_("health-prober", func(ctx context.Context) error { return p.Run(ctx) })
}

// status is the /status section (nil when off).
func (h *healthProbes) status() *statusdoc.Health {
	if h == nil || h.prober == nil {
		return nil
	}
	peers := h.prober.Peers()
	out := &statusdoc.Health{Port: int(h.opts.Port), Interval: h.opts.Interval.String(), Sample: h.opts.Sample,
		Peers: make([]statusdoc.PeerHealth, 0, len(peers))}
	for _, p := range peers {
		out.Peers = append(out.Peers, statusdoc.PeerHealth{
			Subnet:   p.Subnet.String(),
			Overlay:  pathHealth(p.Target.Overlay, p.Overlay),
			Underlay: pathHealth(p.Target.Underlay, p.Underlay),
		})
	}
	return out
}

func pathHealth(addr netip.Addr, s health.PathState) statusdoc.PathHealth {
	out := statusdoc.PathHealth{Addr: addr.String(), State: "unknown", Sent: s.Sent, Lost: s.Lost}
	if s.Known {
		out.State, out.Since = "unreachable", s.Since
		if s.Reachable {
			out.State = "reachable"
		}
	}
	if s.LastRTT > 0 {
		out.RTT = s.LastRTT.String()
	}
	return out
}
