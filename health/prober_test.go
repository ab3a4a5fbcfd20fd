package health

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/metrictest"
)

// echoNet answers requests to the addresses marked up, as a responder
// there would, and counts what was sent.
type echoNet struct {
	mu   sync.Mutex
	up   map[netip.Addr]bool
	sent map[netip.Addr]int
	in   chan pkt
	done chan struct{}
	once sync.Once
}

func newEchoNet() *echoNet {
	return &echoNet{up: map[netip.Addr]bool{}, sent: map[netip.Addr]int{}, in: make(chan pkt, 1024), done: make(chan struct{})}
}

func (e *echoNet) set(a netip.Addr, up bool) { e.mu.Lock(); e.up[a] = up; e.mu.Unlock() }

func (e *echoNet) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case p := <-e.in:
		return copy(b, p.b), p.addr, nil
	case <-e.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (e *echoNet) WriteToUDPAddrPort(b []byte, a netip.AddrPort) (int, error) {
	e.mu.Lock()
	e.sent[a.Addr()]++
	up := e.up[a.Addr()]
	e.mu.Unlock()
	if n, err := parseRequest(b); err == nil && up {
		e.in <- pkt{reply(n, netip.MustParseAddrPort("192.0.2.1:5000")), a}
	}
	return len(b), nil
}

func (e *echoNet) Close() error { e.once.Do(func() { close(e.done) }); return nil }

// icmpSide is echoNet's raw ICMP socket: peers' kernels answer echo
// requests to the addresses marked up.
type icmpSide struct {
	e  *echoNet
	in chan []byte
}

func (c *icmpSide) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case m := <-c.in:
		return copy(b, m), nil, nil
	case <-c.e.done:
		return 0, nil, net.ErrClosed
	}
}

func (c *icmpSide) WriteTo(b []byte, a net.Addr) (int, error) {
	dst, _ := netip.AddrFromSlice(a.(*net.IPAddr).IP)
	c.e.mu.Lock()
	c.e.sent[dst]++
	up := c.e.up[dst]
	c.e.mu.Unlock()
	if up {
		c.in <- echoReplyTo(b)
	}
	return len(b), nil
}

func (c *icmpSide) Close() error                     { return c.e.Close() }
func (c *icmpSide) LocalAddr() net.Addr              { return &net.IPAddr{} }
func (c *icmpSide) SetDeadline(time.Time) error      { return nil }
func (c *icmpSide) SetReadDeadline(time.Time) error  { return nil }
func (c *icmpSide) SetWriteDeadline(time.Time) error { return nil }

func target(i int) Target {
	return Target{
		Subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 24),
		Overlay:  netip.AddrFrom4([4]byte{10, 244, byte(i), 0}),
		Underlay: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}),
	}
}

func newTestProber(t *testing.T, net *echoNet, targets func() []Target, sample int, reg prometheus.Registerer) *Prober {
	t.Helper()
	appendTargets := func(into []Target) []Target { return append(into, targets()...) }
	p, err := NewProber(ProberOptions{Targets: appendTargets, Port: DefaultPort, Interval: time.Second, Sample: sample,
		Timeout: 30 * time.Millisecond, Conn: net, ICMP: &icmpSide{e: net, in: make(chan []byte, 1024)}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	go p.readUDP()
	go p.readICMP()
	t.Cleanup(func() { net.Close() })
	return p
}

// TestProberTellsBlockedVXLANFromDown: a peer whose overlay address is
// silent while its underlay answers is unreachable on the overlay only;
// when the overlay answers again it is reachable, with the change times.
func TestProberTellsBlockedVXLANFromDown(t *testing.T) {
	en := newEchoNet()
	a, b := target(1), target(2)
	for _, x := range []netip.Addr{a.Overlay, a.Underlay, b.Underlay} {
		en.set(x, true)
	}
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	current := []Target{a, b}
	p := newTestProber(t, en, func() []Target { mu.Lock(); defer mu.Unlock(); return current }, 32, reg)
	p.round(context.Background())
	st := states(p)
	if s := st[a.Subnet]; !s.Overlay.Reachable || !s.Underlay.Reachable || s.Overlay.LastRTT <= 0 {
		t.Errorf("a: %+v", s)
	}
	s := st[b.Subnet]
	if !s.Overlay.Known || s.Overlay.Reachable || !s.Underlay.Reachable || s.Overlay.Lost != 1 {
		t.Errorf("b with VXLAN blocked: %+v", s)
	}
	since := s.Overlay.Since
	if got := gauge(t, reg, "overlayd_peers_unreachable", "overlay"); got != 1 {
		t.Errorf("overlayd_peers_unreachable{path=overlay} = %v, want 1", got)
	}
	if en.sent[b.Overlay] != 3 {
		t.Errorf("%d tries to the silent overlay address, want 3", en.sent[b.Overlay])
	}
	en.set(b.Overlay, true)
	time.Sleep(2 * time.Millisecond)
	p.round(context.Background())
	s = states(p)[b.Subnet]
	if !s.Overlay.Reachable || !s.Overlay.Since.After(since) {
		t.Errorf("b unblocked: %+v", s)
	}
	if n := metrictest.Series(t, reg, "overlayd_peer_rtt_seconds"); n != 2 {
		t.Errorf("overlayd_peer_rtt_seconds has %d series, want 2 (one per path, no per-peer label)", n)
	}
	// b blocked again, then gone from the peer set: no longer counted.
	en.set(b.Overlay, false)
	p.round(context.Background())
	if got := gauge(t, reg, "overlayd_peers_unreachable", "overlay"); got != 1 {
		t.Errorf("blocked again: overlayd_peers_unreachable{path=overlay} = %v, want 1", got)
	}
	mu.Lock()
	current = []Target{a}
	mu.Unlock()
	p.round(context.Background())
	if got := gauge(t, reg, "overlayd_peers_unreachable", "overlay"); got != 0 || len(p.Peers()) != 1 {
		t.Errorf("b removed: overlayd_peers_unreachable{path=overlay} = %v, %d peers", got, len(p.Peers()))
	}
}

// TestProberRotatesAndPrefersChanged: with more peers than the sample,
// every peer is probed once per len/sample rounds; a changed peer is
// probed in the very next round.
func TestProberRotatesAndPrefersChanged(t *testing.T) {
	en := newEchoNet()
	var mu sync.Mutex
	targets := make([]Target, 100)
	for i := range targets {
		targets[i] = target(i)
		en.set(targets[i].Overlay, true)
		en.set(targets[i].Underlay, true)
	}
	get := func() []Target { mu.Lock(); defer mu.Unlock(); return append([]Target(nil), targets...) }
	p := newTestProber(t, en, get, 10, nil)
	p.round(context.Background()) // the first round: all 100 are new, 40 of them probed
	for range 6 {
		p.round(context.Background())
	}
	for _, x := range targets {
		if en.sent[x.Overlay] == 0 {
			t.Fatalf("%s never probed in 7 rounds of 10 (+40 new)", x.Subnet)
		}
	}
	mu.Lock()
	targets[57].Underlay = netip.MustParseAddr("198.51.100.57")
	en.set(targets[57].Underlay, true)
	mu.Unlock()
	p.round(context.Background())
	if en.sent[netip.MustParseAddr("198.51.100.57")] == 0 {
		t.Errorf("the changed peer was not probed in the next round")
	}
}

func states(p *Prober) map[netip.Prefix]PeerState {
	out := map[netip.Prefix]PeerState{}
	for _, s := range p.Peers() {
		out[s.Subnet] = s
	}
	return out
}

// gauge reads name{path=path}, failing the test when there is no such series.
func gauge(t *testing.T, reg *prometheus.Registry, name, path string) float64 {
	t.Helper()
	return metrictest.Value(t, reg, name, prometheus.Labels{"path": path})
}

// TestPeerEntryFootprint: the prober keeps 112 bytes per peer (a PeerState
// is 192), and Peers still shows every field as recorded.
func TestPeerEntryFootprint(t *testing.T) {
	if size := unsafe.Sizeof(peerEntry{}); size > 112 {
		t.Errorf("peerEntry is %d bytes, want at most 112", size)
	}
	since := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	e := peerEntry{overlay: netip.MustParseAddr("10.244.1.0"), underlay: netip.MustParseAddr("192.0.2.1")}
	*e.path(Underlay) = pathState{since: since.UnixNano(), lastRTTMicros: 3000, sent: 7, lost: 2, known: true, reachable: true}
	got := e.path(Underlay).public()
	want := PathState{Known: true, Reachable: true, Since: since, LastRTT: 3 * time.Millisecond, Sent: 7, Lost: 2}
	if !got.Since.Equal(want.Since) || got.Known != want.Known || got.Reachable != want.Reachable ||
		got.LastRTT != want.LastRTT || got.Sent != want.Sent || got.Lost != want.Lost {
		t.Errorf("underlay %+v, want %+v", got, want)
	}
	if o := e.path(Overlay).public(); o != (PathState{}) {
		t.Errorf("overlay never probed shows %+v", o)
	}
	if tg := e.target(netip.MustParsePrefix("10.244.1.0/24")); tg.Overlay != e.overlay || tg.Underlay != e.underlay || tg.Subnet.String() != "10.244.1.0/24" {
		t.Errorf("target %+v", tg)
	}
}

// TestSteadyRoundsReuseTheTargetList: with nothing changed, a round hands
// the previous round's slice back to Targets and keeps no per-peer garbage
// (it built a fresh list and a set of every peer's subnet each round: 16
// MB per round at 100,000 peers).
func TestSteadyRoundsReuseTheTargetList(t *testing.T) {
	const n = 10000
	all := make([]Target, n)
	for i := range all {
		all[i] = Target{Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24),
			Overlay: netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), Underlay: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})}
	}
	var handed []int // the capacity of the slice each call was handed
	targets := func(into []Target) []Target {
		handed = append(handed, cap(into))
		return append(into, all...)
	}
	en := newEchoNet()
	p, err := NewProber(ProberOptions{Targets: targets, Port: DefaultPort, Interval: time.Hour, Sample: 4, Burst: n,
		Timeout: time.Millisecond, Conn: en, ICMP: &icmpSide{e: en, in: make(chan []byte, 1024)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { en.Close() })
	p.targets = p.o.Targets(p.targets[:0])
	p.pick(p.targets) // every peer new
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const rounds = 5
	for range rounds {
		p.targets = p.o.Targets(p.targets[:0])
		p.pick(p.targets)
	}
	runtime.ReadMemStats(&after)
	if got := (after.TotalAlloc - before.TotalAlloc) / rounds; got > 64<<10 {
		t.Errorf("a steady round at %d peers allocates %d bytes, want at most 64 KiB", n, got)
	}
	if handed[len(handed)-1] < n {
		t.Errorf("Targets was handed a slice of capacity %d, want the previous round's (at least %d)", handed[len(handed)-1], n)
	}
	if len(p.peers) != n || len(p.order) != n {
		t.Errorf("%d peers, %d in rotation; want %d", len(p.peers), len(p.order), n)
	}
}
