package main

import (
	"context"
	"net/netip"
	"time"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/health"
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
	prober *health.Prober // nil until started (or when unavailable)
	opts   health.ProberOptions
}

// healthTargets are the prober's targets: the peers the reconciler
// programs, read from it (the one owner of the peers; no copy is kept).
// The overlay address is the peer subnet's network address, its
// flannel.<VNI> address; the underlay one is where its VXLAN goes.
func healthTargets(rec *backend.Reconciler) health.Targets {
	return func(out []health.Target) []health.Target {
		rec.PeerDsts(func(sub netip.Prefix, dst netip.Addr) {
			out = append(out, health.Target{Subnet: sub, Overlay: sub.Addr(), Underlay: dst})
		})
		return out
	}
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
	o := health.ProberOptions{
		Targets: healthTargets(d.rec), Port: d.opts.healthPort, Interval: d.opts.healthInterval,
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
	d.health = &healthProbes{prober: p, opts: o}
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
