package samesite

import (
	"crypto/ed25519"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/metrictest"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/vxlandata"
)

// fakeNet is one L2 segment (a VPC subnet): datagrams reach the conn bound
// to exactly the destination address and port, or nobody.
type fakeNet struct {
	mu    sync.Mutex
	conns map[netip.AddrPort]*fakeConn
}

func newFakeNet() *fakeNet { return &fakeNet{conns: map[netip.AddrPort]*fakeConn{}} }

func (n *fakeNet) listen(addr netip.AddrPort) *fakeConn {
	c := &fakeConn{net: n, addr: addr, ready: make(chan struct{}, 1)}
	n.mu.Lock()
	n.conns[addr] = c
	n.mu.Unlock()
	return c
}

type datagram struct {
	from netip.AddrPort
	data []byte
}

// fakeConn is a Conn on a fakeNet. A deaf conn drops what reaches it.
type fakeConn struct {
	net  *fakeNet
	addr netip.AddrPort

	mu     sync.Mutex
	queue  []datagram
	sent   []datagram // what it wrote, with the destination in from
	closed bool
	deaf   bool
	ready  chan struct{}
}

func (c *fakeConn) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	c.mu.Lock()
	c.sent = append(c.sent, datagram{from: to, data: slices.Clone(b)})
	c.mu.Unlock()
	c.net.mu.Lock()
	dst := c.net.conns[to]
	c.net.mu.Unlock()
	if dst != nil {
		dst.deliver(c.addr, b)
	}
	return len(b), nil
}

// deliver queues a datagram as if from had sent it.
func (c *fakeConn) deliver(from netip.AddrPort, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deaf || c.closed {
		return
	}
	c.queue = append(c.queue, datagram{from: from, data: slices.Clone(b)})
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

func (c *fakeConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	for {
		if d, ok, err := c.pop(); err != nil {
			return 0, netip.AddrPort{}, err
		} else if ok {
			return copy(b, d.data), d.from, nil
		}
		<-c.ready
	}
}

// pop takes the oldest queued datagram without blocking.
func (c *fakeConn) pop() (datagram, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return datagram{}, false, net.ErrClosed
	}
	if len(c.queue) == 0 {
		return datagram{}, false, nil
	}
	d := c.queue[0]
	c.queue = c.queue[1:]
	return d, true, nil
}

func (c *fakeConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	select {
	case c.ready <- struct{}{}:
	default:
	}
	return nil
}

func (c *fakeConn) setDeaf(deaf bool) {
	c.mu.Lock()
	c.deaf = deaf
	c.mu.Unlock()
}

func (c *fakeConn) sentCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sent)
}

// host is one node: its lease, detector, conn and the verdicts it reported.
type host struct {
	name  string
	lease subnet.Lease
	key   ed25519.PrivateKey
	det   *Detector
	conn  *fakeConn
	next  *verdictLog
	feed  leaseFeed
	reg   *prometheus.Registry
}

// verdictLog records the verdicts a Detector reports.
type verdictLog struct {
	mu       sync.Mutex
	verdicts []Verdict
}

func (l *verdictLog) SetVerdict(v Verdict) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.verdicts = append(l.verdicts, v)
}

func (l *verdictLog) all() []Verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.verdicts)
}

// leaseFeed turns leases into candidates as the owner of the peer set
// does (an unreadable lease keeps its subnet's candidate as it is).
type leaseFeed struct{ det *Detector }

func candidateOf(l subnet.Lease) (Candidate, bool) {
	data, err := vxlandata.Unmarshal(l.Attrs.BackendData)
	if l.Unreadable || err != nil || !l.Attrs.PrivateIP.IsValid() {
		return Candidate{}, false
	}
	c := Candidate{Subnet: l.Subnet, Private: l.Attrs.PrivateIP, PublicIP: l.Attrs.PublicIP}
	copy(c.Key[:], l.Attrs.SameSiteKey)
	copy(c.MAC[:], data.VtepMAC)
	return c, true
}

func (f leaseFeed) ReplacePeers(leases []subnet.Lease) {
	var cs []Candidate
	for _, l := range leases {
		if c, ok := candidateOf(l); ok {
			cs = append(cs, c)
		} else if l.Unreadable {
			if p, known := f.det.peers[l.Subnet]; known {
				cs = append(cs, p.cand)
			}
		}
	}
	f.det.ReplaceCandidates(cs)
}

func (f leaseFeed) UpdatePeers(events []subnet.Event) {
	var set []Candidate
	var removed []netip.Prefix
	for _, e := range events {
		c, ok := candidateOf(e.Lease)
		switch {
		case e.Type == subnet.EventRemoved:
			removed = append(removed, e.Lease.Subnet)
		case ok:
			set = append(set, c)
		case !e.Lease.Unreadable:
			removed = append(removed, e.Lease.Subnet)
		}
	}
	f.det.UpdateCandidates(set, removed)
}

// dst is where the owner of the peer set sends to's VXLAN, by from's
// verdicts: the private address while it is verified, else the PublicIP.
func dst(from *host, to subnet.Lease) netip.Addr {
	if v, ok := from.det.Verified()[to.Subnet]; ok && v == to.Attrs.PrivateIP {
		return v
	}
	return to.Attrs.PublicIP
}

var (
	testStart = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	underlay  = netip.MustParsePrefix("198.51.100.0/24")
)

// newHost makes node name with private address host number priv on net,
// lease subnet 10.244.<k>.0/24, VTEP MAC 02:00:00:00:00:<k> and public
// address 203.0.113.<10+k>.
func newHost(t *testing.T, n *fakeNet, clock subnet.Clock, name string, priv, k byte) *host {
	t.Helper()
	private := netip.AddrFrom4([4]byte{198, 51, 100, priv})
	mac := net.HardwareAddr{2, 0, 0, 0, 0, k}
	key := testKey(k)
	lease := testLease(k, private, mac)
	conn := n.listen(netip.AddrPortFrom(private, DefaultPort))
	reg := prometheus.NewRegistry()
	next := &verdictLog{}
	det, err := New(Options{
		Conn: conn, Local: netip.PrefixFrom(private, underlay.Bits()),
		Self: Identity{Subnet: lease.Subnet, MAC: mac, Key: key}, Clock: clock, Registerer: reg, Verdicts: next,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &host{name: name, lease: lease, key: key, det: det, conn: conn, next: next, feed: leaseFeed{det}, reg: reg}
	return h
}

// testKey is host k's same-site key, derived from k (tests only).
func testKey(k byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = k
	return ed25519.NewKeyFromSeed(seed)
}

func testLease(k byte, private netip.Addr, mac net.HardwareAddr) subnet.Lease {
	return subnet.Lease{
		Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, k, 0}), 24),
		Attrs: subnet.LeaseAttrs{
			PublicIP:    netip.AddrFrom4([4]byte{203, 0, 113, 10 + k}),
			BackendType: subnet.BackendVXLAN,
			BackendData: []byte(`{"VNI":1,"VtepMAC":"` + mac.String() + `"}`),
			PrivateIP:   private,
			SameSiteKey: testKey(k).Public().(ed25519.PublicKey),
		},
		Expiration: testStart.Add(24 * time.Hour),
	}
}

// probe runs one probe round on every host at the clock's time.
func probe(hosts ...*host) {
	for _, h := range hosts {
		h.det.mu.Lock()
		h.det.probeDue(h.det.o.Clock.Now())
		h.det.mu.Unlock()
	}
}

// pump delivers queued datagrams to their detectors until none are left.
func pump(hosts ...*host) {
	for moved := true; moved; {
		moved = false
		for _, h := range hosts {
			for {
				d, ok, _ := h.conn.pop()
				if !ok {
					break
				}
				moved = true
				h.det.handlePacket(d.from, d.data)
			}
		}
	}
}

// feedPeers gives every host the other hosts' leases as its snapshot.
func feedPeers(hosts ...*host) {
	for _, h := range hosts {
		var peers []subnet.Lease
		for _, o := range hosts {
			if o != h {
				peers = append(peers, o.lease)
			}
		}
		h.feed.ReplacePeers(peers)
	}
}

// metric returns the value of the overlayd_samesite_<name> counter or
// gauge of h, restricted to the result label when given.
func (h *host) metric(t *testing.T, name, result string) float64 {
	t.Helper()
	labels := prometheus.Labels{}
	if result != "" {
		labels["result"] = result
	}
	v, ok := metrictest.Lookup(t, h.reg, "overlayd_samesite_"+name, labels)
	if !ok {
		t.Fatalf("%s: metric overlayd_samesite_%s{result=%q} not found", h.name, name, result)
	}
	return v
}
