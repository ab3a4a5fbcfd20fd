package backend

import (
	"errors"
	"fmt"
)

// RouteMode is the kernel shape of the routes to VXLAN peers.
type RouteMode string

// Route modes. RouteModeOnlink is flannel's `<subnet> via <subnet address>
// dev flannel.<VNI> onlink`; RouteModeNexthop points each route at a
// nexthop object of its own (nexthop.go); RouteModeAuto uses nexthop
// objects from NexthopThreshold peers on, when the kernel has them.
const (
	RouteModeOnlink  RouteMode = "onlink"
	RouteModeNexthop RouteMode = "nexthop"
	RouteModeAuto    RouteMode = "auto"
)

// DefaultNexthopThreshold is the peer count from which RouteModeAuto uses
// nexthop objects: about where flannel's route shape stops installing in
// near-linear time on the kernels measured (docs/performance.md).
const DefaultNexthopThreshold = 2000

// ParseRouteMode validates a --route-mode value.
func ParseRouteMode(s string) (RouteMode, error) {
	switch m := RouteMode(s); m {
	case RouteModeOnlink, RouteModeNexthop, RouteModeAuto:
		return m, nil
	}
	return "", fmt.Errorf("route mode %q: want auto, onlink or nexthop", s)
}

// routeModeState is the decision in force and why.
type routeModeState struct {
	// support: 0 not checked yet, 1 the kernel has nexthop objects, -1 not.
	support       int8
	supportReason string
	decided       bool
	nexthop       bool
	reason        string
}

// nexthopSupport checks once whether the Kernel can write nexthop objects.
func (r *Reconciler) nexthopSupport() (bool, string) {
	m := &r.mode
	if m.support == 0 {
		m.support = -1
		nk, ok := r.k.(nexthopKernel)
		switch {
		case !ok:
			m.supportReason = "the netlink interface in use cannot write nexthop objects"
		default:
			switch err := nk.nexthopSupport(); {
			case err == nil:
				m.support = 1
			case errors.Is(err, errNoNexthops):
				m.supportReason = fmt.Sprintf("the kernel has no nexthop objects (%v)", err)
			default:
				// Not an answer: onlink for now, asked again next step.
				m.support = 0
				why := fmt.Sprintf("checking for nexthop objects failed (%v)", err)
				if why != m.supportReason {
					r.log.Warn("checking for nexthop objects failed; will retry", "error", err)
				}
				m.supportReason = why
			}
		}
		r.own.nexthops = m.support == 1
	}
	return m.support == 1, m.supportReason
}

// wantNexthops decides the mode for the current peer count. auto switches
// on at the threshold and back off below half of it, so a peer count
// hovering near the threshold does not rewrite every route each time.
func (r *Reconciler) wantNexthops() (on bool, reason func() string) {
	mode, n, t := r.opts.RouteMode, len(r.want.peers), r.opts.NexthopThreshold
	// Checked in every mode, so that the nexthops a previous run left are
	// dumped and removed after an onlink restart.
	ok, why := r.nexthopSupport()
	switch {
	case mode == RouteModeOnlink:
		return false, func() string { return "--route-mode=onlink" }
	case !ok:
		return false, func() string { return fmt.Sprintf("--route-mode=%s but %s", mode, why) }
	case mode == RouteModeNexthop:
		return true, func() string { return "--route-mode=nexthop" }
	case n >= t:
		return true, func() string { return fmt.Sprintf("auto: %d peers, at least the threshold %d", n, t) }
	case r.want.nexthops && n >= t/2:
		return true, func() string { return fmt.Sprintf("auto: %d peers, not below half the threshold %d", n, t) }
	}
	return false, func() string { return fmt.Sprintf("auto: %d peers, below the threshold %d", n, t) }
}

// decideRouteMode applies the mode decision before a pass. A switch marks
// every route dirty: the pass replaces each route in place (never
// deleting one first), and deletes orphaned nexthops only after the
// routes have moved off them.
func (r *Reconciler) decideRouteMode() {
	on, reason := r.wantNexthops()
	m := &r.mode
	if on == m.nexthop && m.decided {
		return
	}
	m.decided = true
	changed := on != r.want.nexthops
	r.want.setNexthops(on)
	m.nexthop, m.reason = on, reason()
	if changed {
		for _, p := range r.want.peers {
			r.peerPending(p)
		}
	}
	level := r.log.Info
	if r.opts.RouteMode == RouteModeNexthop && !on {
		level = r.log.Warn
	}
	level("route mode", "mode", m.name(), "reason", m.reason, "peers", len(r.want.peers))
	r.metrics.setRouteMode(on)
	r.board.setRouteMode(m.name(), m.reason)
}

func (m *routeModeState) name() RouteMode {
	if m.nexthop {
		return RouteModeNexthop
	}
	return RouteModeOnlink
}
