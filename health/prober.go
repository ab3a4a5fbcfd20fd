package health

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ProberOptions configure a Prober.
type ProberOptions struct {
	Targets Targets
	// Port is the peers' responder port.
	Port uint16
	// Interval between rounds (default 10s); Sample the peers probed per
	// round at most (default 32), besides those whose entries are new or
	// changed, up to Burst of them (default 4*Sample; the rest wait for
	// the next rounds); Timeout the wait for an answer (default
	// Interval/2, at most 2s), the request resent at a third and two
	// thirds of it.
	Interval time.Duration
	Sample   int
	Burst    int
	Timeout  time.Duration
	// Conn is the underlay probe's UDP socket; ICMP the overlay probe's
	// raw ICMP socket (ListenICMP). Unbound: the kernel picks the source,
	// flannel.<VNI>'s address towards a peer's flannel.<VNI> address.
	Conn       PacketConn
	ICMP       net.PacketConn
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

func (o *ProberOptions) withDefaults() {
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Sample <= 0 {
		o.Sample = 32
	}
	if o.Burst <= 0 {
		o.Burst = 4 * o.Sample
	}
	if o.Timeout <= 0 {
		o.Timeout = min(o.Interval/2, 2*time.Second)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Prober probes a rotating sample of peers every interval, both paths.
type Prober struct {
	o   ProberOptions
	met *metrics
	id  uint16 // ICMP echo identifier

	mu    sync.Mutex
	peers map[netip.Prefix]*peerEntry
	order []netip.Prefix // rotation order
	next  int            // rotation position
	dirty []netip.Prefix // new or changed, not probed since
	// rounds counts the rounds; targets is the last round's list, reused.
	rounds  uint32
	targets []Target
	// unreachable counts the peers whose path is known unreachable.
	unreachable map[Path]int
	pending     map[Nonce]chan time.Time
}

// NewProber checks the options and registers the metrics.
func NewProber(o ProberOptions) (*Prober, error) {
	o.withDefaults()
	if o.Targets == nil || o.Conn == nil || o.ICMP == nil || o.Port == 0 {
		return nil, errors.New("health prober: Targets, Conn, ICMP and Port are required")
	}
	met, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	var id [2]byte
	rand.Read(id[:])
	return &Prober{o: o, met: met, id: binary.BigEndian.Uint16(id[:]), peers: map[netip.Prefix]*peerEntry{}, pending: map[Nonce]chan time.Time{}, unreachable: map[Path]int{}}, nil
}

// ListenProber opens the prober's socket on any address.
func ListenProber() (*net.UDPConn, error) {
	return net.ListenUDP("udp4", &net.UDPAddr{})
}

// Run probes until ctx ends, then closes the socket.
func (p *Prober) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { p.o.Conn.Close(); p.o.ICMP.Close() })
	defer stop()
	go p.readUDP()
	go p.readICMP()
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		p.round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// readUDP hands the underlay answers to the probes waiting for them.
func (p *Prober) readUDP() {
	p.readReplies(MaxRequest, func(buf []byte) (int, error) {
		n, _, err := p.o.Conn.ReadFromUDPAddrPort(buf)
		return n, err
	}, func(msg []byte) (Nonce, bool) {
		nonce, _, err := ParseReply(msg)
		return nonce, err == nil
	})
}

// readICMP hands the overlay echo replies to the probes waiting for them.
func (p *Prober) readICMP() {
	p.readReplies(1500, func(buf []byte) (int, error) {
		n, _, err := p.o.ICMP.ReadFrom(buf)
		return n, err
	}, func(msg []byte) (Nonce, bool) {
		return parseEchoReply(msg, p.id)
	})
}

// readReplies reads messages with read until the socket is closed,
// skipping read errors, and delivers the nonce of every message parse
// accepts.
func (p *Prober) readReplies(size int, read func([]byte) (int, error), parse func([]byte) (Nonce, bool)) {
	buf := make([]byte, size)
	for {
		n, err := read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if nonce, ok := parse(buf[:n]); ok {
			p.deliver(nonce)
		}
	}
}

func (p *Prober) deliver(nonce Nonce) {
	at := p.o.Now()
	p.mu.Lock()
	ch := p.pending[nonce]
	delete(p.pending, nonce)
	p.mu.Unlock()
	if ch != nil {
		ch <- at
	}
}

// round picks this round's peers and probes them concurrently.
func (p *Prober) round(ctx context.Context) {
	p.targets = p.o.Targets(p.targets[:0])
	picked := p.pick(p.targets)
	var wg sync.WaitGroup
	for _, t := range picked {
		for _, path := range []Path{Overlay, Underlay} {
			dst := t.Overlay
			if path == Underlay {
				dst = t.Underlay
			}
			if !dst.IsValid() {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				rtt, ok := p.probe(ctx, path, dst)
				if ctx.Err() == nil {
					p.record(t, path, rtt, ok)
				}
			}()
		}
	}
	wg.Wait()
}

// pick updates the peer table from targets and returns the peers whose
// entries are new or changed (up to Burst per round; the rest wait for
// the next), then the next ones in rotation, Sample in all at least.
func (p *Prober) pick(targets []Target) []Target {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rounds++
	named := 0
	for _, t := range targets {
		old, ok := p.peers[t.Subnet]
		switch {
		case ok && old.round == p.rounds:
			continue // named twice: the first one counts
		case ok && old.target(t.Subnet) == t:
			old.round = p.rounds
			named++
			continue
		case !ok:
			p.order = append(p.order, t.Subnet)
		default:
			p.forget(old)
		}
		p.peers[t.Subnet] = &peerEntry{overlay: t.Overlay, underlay: t.Underlay, round: p.rounds}
		p.dirty = append(p.dirty, t.Subnet)
		named++
	}
	if named != len(p.peers) {
		p.dropGone()
	}
	for _, path := range []Path{Overlay, Underlay} {
		p.met.unreachable.WithLabelValues(string(path)).Set(float64(p.unreachable[path]))
	}
	var picked []Target
	inRound := map[netip.Prefix]bool{}
	for len(p.dirty) > 0 && len(picked) < p.o.Burst {
		s := p.dirty[0]
		p.dirty = p.dirty[1:]
		if ps, ok := p.peers[s]; ok && !inRound[s] {
			inRound[s] = true
			picked = append(picked, ps.target(s))
		}
	}
	for i := 0; i < len(p.order) && len(picked) < p.o.Sample; i++ {
		if p.next >= len(p.order) {
			p.next = 0
		}
		s := p.order[p.next]
		p.next++
		if !inRound[s] {
			inRound[s] = true
			picked = append(picked, p.peers[s].target(s))
		}
	}
	return picked
}

// forget takes a replaced or removed peer out of the unreachable counts.
func (p *Prober) forget(ps *peerEntry) {
	for _, path := range []Path{Overlay, Underlay} {
		if st := ps.path(path); st.known && !st.reachable {
			p.unreachable[path]--
		}
	}
}

func (p *Prober) dropGone() {
	order := p.order[:0]
	for _, s := range p.order {
		if p.peers[s].round == p.rounds {
			order = append(order, s)
		} else {
			p.forget(p.peers[s])
			delete(p.peers, s)
		}
	}
	p.order = order
	if p.next > len(p.order) {
		p.next = 0
	}
}

// probe sends up to three requests, a third of the timeout apart, and
// waits for any answer.
func (p *Prober) probe(ctx context.Context, path Path, dst netip.Addr) (time.Duration, bool) {
	var n Nonce
	rand.Read(n[:])
	ch := make(chan time.Time, 1)
	p.mu.Lock()
	p.pending[n] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, n)
		p.mu.Unlock()
	}()
	step := p.o.Timeout / 3
	start := p.o.Now()
	for try := 0; try < 3; try++ {
		if path == Overlay {
			p.o.ICMP.WriteTo(echoRequest(p.id, n), ipAddr(dst))
		} else {
			p.o.Conn.WriteToUDPAddrPort(Request(n), netip.AddrPortFrom(dst, p.o.Port))
		}
		p.met.sent.Inc()
		t := time.NewTimer(step)
		select {
		case at := <-ch:
			t.Stop()
			return at.Sub(start), true
		case <-ctx.Done():
			t.Stop()
			return 0, false
		case <-t.C:
		}
	}
	return 0, false
}

// record updates the peer's path state, the metrics, and logs a change.
func (p *Prober) record(t Target, path Path, rtt time.Duration, ok bool) {
	now := p.o.Now()
	p.mu.Lock()
	ps, found := p.peers[t.Subnet]
	if !found || ps.target(t.Subnet) != t {
		p.mu.Unlock()
		return // gone or changed meanwhile
	}
	st := ps.path(path)
	st.sent++
	changed := !st.known || st.reachable != ok
	wasKnown := st.known
	if ok {
		st.setRTT(rtt)
	} else {
		st.lost++
	}
	if changed {
		if wasKnown && !st.reachable {
			p.unreachable[path]--
		}
		if !ok {
			p.unreachable[path]++
		}
		st.known, st.reachable, st.since = true, ok, now.UnixNano()
	}
	other := *ps.path(Underlay)
	if path == Underlay {
		other = *ps.path(Overlay)
	}
	unreachable := p.unreachable[path]
	p.mu.Unlock()
	p.met.observe(path, rtt, ok)
	if changed && (wasKnown || !ok) {
		p.logChange(t, path, ok, other)
	}
	if changed {
		p.met.unreachable.WithLabelValues(string(path)).Set(float64(unreachable))
	}
}

func (p *Prober) logChange(t Target, path Path, ok bool, other pathState) {
	attrs := []any{"peer", t.Subnet, "path", path, "overlay_addr", t.Overlay, "underlay_addr", t.Underlay}
	if !ok {
		if path == Overlay && other.known && other.reachable {
			attrs = append(attrs, "hint", "the underlay answers: UDP 8472 (VXLAN) blocked or NAT wrong")
		}
		p.o.Logger.Warn("peer unreachable", attrs...)
		return
	}
	p.o.Logger.Info("peer reachable again", attrs...)
}

// Peers returns every peer's state, sorted by subnet.
func (p *Prober) Peers() []PeerState {
	p.mu.Lock()
	out := make([]PeerState, 0, len(p.peers))
	for sub, ps := range p.peers {
		out = append(out, PeerState{Target: ps.target(sub), Overlay: ps.path(Overlay).public(), Underlay: ps.path(Underlay).public()})
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Subnet.Addr().Less(out[j].Subnet.Addr()) })
	return out
}
