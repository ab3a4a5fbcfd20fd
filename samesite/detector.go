package samesite

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/subnet"
)

// Defaults of Options.
const (
	DefaultPort      = 8475
	DefaultInterval  = 30 * time.Second
	DefaultTimeout   = time.Second
	DefaultMaxMissed = 3
)

// Identity is what a node's responder answers with: its lease subnet and
// its VTEP MAC, both also in its lease, signed with Key, whose public half
// is the lease's OverlaydKey.
type Identity struct {
	Subnet netip.Prefix
	MAC    net.HardwareAddr
	Key    ed25519.PrivateKey
}

// Candidate is a peer that advertises a private address: probes go to
// Private, and an answer must name Subnet and MAC.
type Candidate struct {
	Subnet   netip.Prefix
	Private  netip.Addr
	MAC      [6]byte
	PublicIP netip.Addr // for logs
	// Key is the lease's OverlaydKey (an ed25519 public key): an answer
	// must be signed with it. A candidate without one (all zero) is not
	// probed.
	Key [32]byte
}

// Verdict says that Private (verified against MAC) is proven to be the
// subnet's peer, or, with Private invalid, that it is not (any more).
type Verdict struct {
	Subnet  netip.Prefix
	Private netip.Addr
	MAC     [6]byte
	// Key is the candidate's OverlaydKey the answers were verified with.
	Key [32]byte
}

// VerdictSink receives verdict changes. It is called with the Detector's
// lock held, so it must only queue.
type VerdictSink interface {
	SetVerdict(v Verdict)
}

// Options configure a Detector. Conn, Local and Self are required.
type Options struct {
	// Conn is the socket on our bind address and Port (see Listen).
	Conn Conn
	// Port is where peers' responders listen (the same port as ours).
	// 0 means DefaultPort.
	Port uint16
	// Local is our bind address with the underlay prefix length, e.g.
	// 198.51.100.2/24: candidates must be inside it, and probes from
	// outside it are not answered.
	Local netip.Prefix
	// Self is our own identity, for answers.
	Self Identity
	// Verdicts receives every verdict change; nil: none.
	Verdicts VerdictSink
	// Interval is the re-verification period of a verified peer and the
	// longest pause between probes of a candidate.
	Interval time.Duration
	// Timeout is how long a verified peer has to answer a probe before it
	// counts as missed; also the first retry delay of a candidate.
	Timeout time.Duration
	// MaxMissed is how many unanswered probes in a row make a verified
	// peer fall back to its public address.
	MaxMissed int
	// Clock drives the probe schedule; nil: the real clock.
	Clock subnet.Clock
	// Rand supplies nonces; nil: crypto/rand.
	Rand   io.Reader
	Logger *slog.Logger
	// Registerer receives the overlayd_samesite_* metrics; nil: none.
	Registerer prometheus.Registerer
}

func (o *Options) withDefaults() error {
	switch {
	case o.Conn == nil:
		return errors.New("same-site options: Conn is nil")
	case !o.Local.IsValid() || !o.Local.Addr().Is4():
		return fmt.Errorf("same-site options: Local %s is not an IPv4 address with a prefix length", o.Local)
	case !o.Self.Subnet.Addr().Is4() || o.Self.Subnet.Masked() != o.Self.Subnet:
		return fmt.Errorf("same-site options: Self.Subnet %s is not a masked IPv4 prefix", o.Self.Subnet)
	case len(o.Self.MAC) != 6:
		return fmt.Errorf("same-site options: Self.MAC %q is not a 6-byte MAC", o.Self.MAC)
	case len(o.Self.Key) != ed25519.PrivateKeySize:
		return fmt.Errorf("same-site options: Self.Key has %d bytes, want an ed25519 private key (%d)", len(o.Self.Key), ed25519.PrivateKeySize)
	case o.MaxMissed < 0:
		return fmt.Errorf("same-site options: MaxMissed %d is negative", o.MaxMissed)
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Interval < o.Timeout {
		return fmt.Errorf("same-site options: Interval %s is shorter than Timeout %s", o.Interval, o.Timeout)
	}
	if o.MaxMissed == 0 {
		o.MaxMissed = DefaultMaxMissed
	}
	if o.Clock == nil {
		o.Clock = subnet.RealClock()
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Verdicts == nil {
		o.Verdicts = discardVerdicts{}
	}
	return nil
}

type discardVerdicts struct{}

func (discardVerdicts) SetVerdict(Verdict) {}

// Detector answers probes, probes candidate peers and reports the
// verdicts. Verified, ReplaceCandidates and UpdateCandidates may be called
// from any goroutine; Run is the one goroutine that probes.
type Detector struct {
	o       Options
	log     *slog.Logger
	metrics *metrics
	kick    chan struct{}

	// mu guards the peer state; it is held while a verdict is passed on,
	// so that verdicts reach Options.Verdicts in order.
	mu      sync.Mutex
	peers   map[netip.Prefix]*peerState
	byNonce map[nonce]netip.Prefix

	// vmu guards verified alone, for Verified. It is a leaf lock: nothing
	// is called while it is held.
	vmu      sync.RWMutex
	verified map[netip.Prefix]netip.Addr
}

// New validates o and registers the metrics; it sends nothing.
func New(o Options) (*Detector, error) {
	if err := o.withDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("same-site: %w", err)
	}
	return &Detector{
		o: o, log: o.Logger, metrics: m, kick: make(chan struct{}, 1),
		peers: map[netip.Prefix]*peerState{}, byNonce: map[nonce]netip.Prefix{},
		verified: map[netip.Prefix]netip.Addr{},
	}, nil
}

// Verified returns the verified same-site peers: subnet to private address.
func (d *Detector) Verified() map[netip.Prefix]netip.Addr {
	d.vmu.RLock()
	defer d.vmu.RUnlock()
	out := make(map[netip.Prefix]netip.Addr, len(d.verified))
	for s, a := range d.verified {
		out[s] = a
	}
	return out
}

// ReplaceCandidates makes cs the candidates (after every snapshot of the
// peer set): new ones are probed now, known ones re-probed now.
func (d *Detector) ReplaceCandidates(cs []Candidate) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.replaceCandidates(cs, d.o.Clock.Now())
	d.poke()
}

// UpdateCandidates adds or re-announces the candidates in set (their
// lease was written again: re-probed now) and drops those in removed.
func (d *Detector) UpdateCandidates(set []Candidate, removed []netip.Prefix) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.o.Clock.Now()
	for _, s := range removed {
		d.removePeer(s)
	}
	for _, c := range set {
		d.applyCandidate(c, now)
	}
	d.poke()
}

// poke wakes Run to probe new candidates now.
func (d *Detector) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}
