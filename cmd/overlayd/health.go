package main

import (
	"net/netip"
	"time"

	"github.com/overlayd/overlayd/health"
)

// The responder answers at most this many probes per second (burst as
// many): 10,000 peers probing a rotating sample stay far below it.
const (
	healthAnswerRate  = 2000
	healthAnswerBurst = 2000
)

// startHealth starts the health responder on the bind address
// (--health-port). Failing to open the port is not fatal: peers' probes
// of this node then go unanswered, and doctor says so.
func (d *daemon) startHealth(g *group) {
	port := d.opts.healthPort
	if port == 0 {
		d.log.Info("health responder off (--health-port=0)")
		return
	}
	bind := netip.AddrPortFrom(d.choice.Addr, port)
	conn, err := health.Listen(bind)
	if err != nil {
		d.log.Warn("health responder unavailable; peers' underlay probes of this node go unanswered", "bind", bind, "err", err)
		return
	}
	resp := health.NewResponder(conn, health.NewLimiter(healthAnswerRate, healthAnswerBurst, time.Now), d.log)
	d.log.Info("health responder listening", "bind", bind)
	g.go_("health-responder", resp.Run)
}
