package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

const groupReach = "reachability"

// icmpEchoSize is a small ping: 20 bytes of IP, 8 of ICMP, 56 of payload.
const icmpEchoSize = 84

// probeParallel bounds the one-shot probes in flight.
const probeParallel = 8

// peerProbe is one peer's one-shot result.
type peerProbe struct {
	lease       subnet.Lease
	overlay     time.Duration
	overlayErr  error
	underlay    time.Duration
	underlayErr error // errSkipped when no probe port is known
	seen        netip.AddrPort
}

var errSkipped = errors.New("not probed")

// probe probes up to MaxPeers peers once, both ways; the result is kept
// for the other checks.
func (f *facts) probe(ctx context.Context, e *Env) []peerProbe {
	if f.probed {
		return f.probes
	}
	f.probed = true
	if e.Probe == nil {
		return nil
	}
	peers := f.peers()
	if len(peers) > e.Opts.MaxPeers {
		peers = peers[:e.Opts.MaxPeers]
	}
	out := make([]peerProbe, len(peers))
	sem := make(chan struct{}, probeParallel)
	var wg sync.WaitGroup
	for i, l := range peers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = f.probeOne(ctx, e, l)
		}()
	}
	wg.Wait()
	f.probes = out
	return out
}

func (f *facts) probeOne(ctx context.Context, e *Env, l subnet.Lease) peerProbe {
	p := peerProbe{lease: l, overlayErr: errSkipped, underlayErr: errSkipped}
	if src := f.deviceAddr(); src.IsValid() && f.device != nil {
		pctx, cancel := context.WithTimeout(ctx, e.Opts.ProbeTimeout)
		p.overlay, p.overlayErr = e.Probe.Ping(pctx, src, l.Subnet.Addr(), icmpEchoSize, false)
		cancel()
	}
	if e.Opts.HealthPort > 0 && l.Attrs.PublicIP.IsValid() {
		pctx, cancel := context.WithTimeout(ctx, e.Opts.ProbeTimeout)
		dst := netip.AddrPortFrom(l.Attrs.PublicIP, uint16(e.Opts.HealthPort))
		p.underlay, p.seen, p.underlayErr = e.Probe.Echo(pctx, f.bind, dst)
		cancel()
	}
	return p
}

// checkReach: each sampled peer over the overlay (the VXLAN path) and the
// underlay (the probe port), then the path MTU over the overlay.
func checkReach(ctx context.Context, e *Env, f *facts, r *Report) {
	if e.Probe == nil || f.leaseErr != nil {
		r.add(Result{Group: groupReach, Check: "peers", Status: Skip, Detail: "no prober or no peer list (datastore unreachable)"})
		return
	}
	if f.device == nil || !f.own.IsValid() {
		r.add(Result{Group: groupReach, Check: "peers", Status: Fail,
			Detail: fmt.Sprintf("%s or this node's subnet is missing: nothing goes over the overlay", f.deviceName()),
			Fix:    "start overlayd"})
		return
	}
	probes := f.probe(ctx, e)
	if n := len(f.peers()); n > len(probes) {
		r.add(Result{Group: groupReach, Check: "peers", Status: OK,
			Detail: fmt.Sprintf("probing %d of %d peers (--max-peers)", len(probes), n)})
	}
	if len(probes) == 0 {
		r.add(Result{Group: groupReach, Check: "peers", Status: OK, Detail: "no peers yet"})
	}
	for _, p := range probes {
		res := peerResult(e, f, p)
		res.Detail += liveHealth(e, p.lease.Subnet)
		r.add(res)
	}
	r.add(checkPathMTU(ctx, e, f, probes))
}

func peerResult(e *Env, f *facts, p peerProbe) Result {
	res := Result{Group: groupReach, Check: "peer " + p.lease.Subnet.String()}
	pub := p.lease.Attrs.PublicIP
	under := fmt.Sprintf("probe port %d at %s", e.Opts.HealthPort, pub)
	switch {
	case p.overlayErr == nil && p.underlayErr == nil:
		res.Status, res.Detail = OK, fmt.Sprintf("overlay %s, underlay %s", round(p.overlay), round(p.underlay))
	case p.overlayErr == nil && errors.Is(p.underlayErr, errSkipped):
		res.Status, res.Detail = OK, fmt.Sprintf("overlay %s", round(p.overlay))
	case p.overlayErr == nil:
		res.Status = Warn
		res.Detail = fmt.Sprintf("overlay %s, but %s does not answer (%v): the peer runs flanneld or an older overlayd, or the port is filtered", round(p.overlay), under, p.underlayErr)
		res.Fix = fmt.Sprintf("allow UDP %d between nodes (or ignore for flanneld peers)", e.Opts.HealthPort)
	case p.underlayErr == nil:
		res.Status = Fail
		res.Detail = fmt.Sprintf("nothing over the overlay to %s (%v), while %s answers: UDP %d (VXLAN) is blocked or the NAT is wrong between here and %s",
			p.lease.Subnet.Addr(), p.overlayErr, under, f.vxlanPort(), pub)
		res.Fix = fmt.Sprintf("allow UDP %d both ways between the nodes (security group, firewall) and check both nodes' --public-ip", f.vxlanPort())
	default:
		res.Status = Fail
		res.Detail = fmt.Sprintf("nothing over the overlay to %s (%v), and %s does not answer (%v): the peer is down or %s is unreachable",
			p.lease.Subnet.Addr(), p.overlayErr, under, p.underlayErr, pub)
		res.Fix = "check that the peer runs and that " + pub.String() + " is its reachable address"
	}
	return res
}

func (f *facts) vxlanPort() int {
	if f.device != nil && f.device.VXLAN != nil && f.device.VXLAN.Port > 0 {
		return f.device.VXLAN.Port
	}
	if f.cfg != nil && f.cfg.VXLAN.Port > 0 {
		return f.cfg.VXLAN.Port
	}
	return 8472
}

// checkPathMTU: a full-size packet with DF over the overlay to the first
// reachable peers. When it is lost while small ones pass, the path
// cannot carry what flannel.<VNI>'s MTU promises: a black hole for big
// packets (TCP handshakes work, transfers hang).
func checkPathMTU(ctx context.Context, e *Env, f *facts, probes []peerProbe) Result {
	res := Result{Group: groupReach, Check: "path MTU"}
	mtu := f.device.MTU
	tried := 0
	var bad []string
	for _, p := range probes {
		if p.overlayErr != nil || tried == 3 {
			continue
		}
		tried++
		dst := p.lease.Subnet.Addr()
		if err := pingDF(ctx, e, f, dst, mtu); err == nil {
			continue
		}
		fits := bisectMTU(ctx, e, f, dst, icmpEchoSize, mtu)
		bad = append(bad, fmt.Sprintf("%s carries %d bytes, not %d", p.lease.Subnet, fits, mtu))
	}
	switch {
	case tried == 0:
		res.Status, res.Detail = Skip, "no peer reachable over the overlay to probe"
	case len(bad) > 0:
		res.Status = Fail
		res.Detail = fmt.Sprintf("%s has MTU %d but the path over the underlay is smaller: %s (an MTU black hole: large packets vanish)", f.device.Name, mtu, joinLimit(bad))
		res.Fix = "make the underlay MTU equal on every node and hop, or set Backend.MTU so that the device MTU is the smallest path MTU minus 50"
	default:
		res.Status, res.Detail = OK, fmt.Sprintf("%d-byte packets with DF reach %d peer(s) over %s", mtu, tried, f.device.Name)
	}
	return res
}

func pingDF(ctx context.Context, e *Env, f *facts, dst netip.Addr, size int) error {
	t := e.Opts.ProbeTimeout
	if t > time.Second {
		t = time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	_, err := e.Probe.Ping(pctx, f.deviceAddr(), dst, size, true)
	return err
}

// bisectMTU finds the largest size in [lo, hi) that passes, in a few probes.
func bisectMTU(ctx context.Context, e *Env, f *facts, dst netip.Addr, lo, hi int) int {
	for i := 0; i < 7 && hi-lo > 8; i++ {
		mid := (lo + hi) / 2
		if pingDF(ctx, e, f, dst, mid) == nil {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

func joinLimit(s []string) string {
	out := ""
	for i, x := range limit(s, 3) {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}

func round(d time.Duration) string {
	return d.Round(10 * time.Microsecond).String()
}

// liveHealth is the daemon's own view of the peer (its health probes in
// /status), to read next to the one-shot result.
func liveHealth(e *Env, sn netip.Prefix) string {
	if e.Status == nil || e.Status.Health == nil {
		return ""
	}
	for _, ph := range e.Status.Health.Peers {
		if ph.Subnet != sn.String() || ph.Overlay.State == "unknown" {
			continue
		}
		return fmt.Sprintf("; overlayd's probes: overlay %s since %s (%d/%d lost), underlay %s",
			ph.Overlay.State, ph.Overlay.Since.UTC().Format(time.TimeOnly), ph.Overlay.Lost, ph.Overlay.Sent, ph.Underlay.State)
	}
	return ""
}
