package subnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrOwnLeaseLost: our subnet was deleted by someone else and another
// node took it before we could re-create it. The agent must exit: its
// kernel state and subnet file describe a subnet it no longer owns.
var ErrOwnLeaseLost = errors.New("own subnet lease lost to another node")

// Defaults of ManagerOptions.
const (
	DefaultLeaseTTL    = 24 * time.Hour
	DefaultRenewMargin = 60 * time.Minute
	DefaultRenewRetry  = time.Minute
	defaultBackoffMin  = 100 * time.Millisecond
	defaultBackoffMax  = 10 * time.Second
	// maxAcquireAttempts bounds the lost-creation-race retries.
	maxAcquireAttempts = 10
)

// ManagerOptions configure a Manager. Registry, Config and Attrs.PublicIP
// are required.
type ManagerOptions struct {
	Registry Registry
	Config   *Config
	// Attrs is our lease value: PublicIP, BackendType, BackendData, PrivateIP.
	Attrs LeaseAttrs
	// PreviousSubnet is the (masked) FLANNEL_SUBNET of the old subnet file;
	// invalid if none.
	PreviousSubnet netip.Prefix
	// PreviousIPv6Subnet is the (masked) FLANNEL_IPV6_SUBNET of the old
	// subnet file; invalid if none.
	PreviousIPv6Subnet netip.Prefix
	TTL                time.Duration // default DefaultLeaseTTL
	RenewMargin        time.Duration // default DefaultRenewMargin; must be < TTL
	RenewRetry         time.Duration // pause after a failed renewal; default DefaultRenewRetry
	Logger             *slog.Logger  // default: discard
	Clock              Clock         // default: RealClock()
	Rand               *rand.Rand    // default: seeded randomly
	// Registerer receives the manager's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// OnLeaseExpired, when set, is called by RunFence each time our lease
	// becomes expired (true) or valid again (false).
	OnLeaseExpired func(expired bool)
	// StartList is the lease list the caller already read at start (to
	// find the VTEP MAC of our previous lease); nil: none. Acquire's first
	// attempt and the watch's first snapshot use it instead of listing
	// again, so that a start costs one list: at 10,000 leases each list is
	// megabytes for etcd to read and send.
	StartList *LeaseList
}

// Manager owns this node's lease (acquire, renew, keep) and turns the
// registry's lease stream into peer updates.
type Manager struct {
	reg         Registry
	cfg         *Config
	attrs       LeaseAttrs
	prevSubnet  netip.Prefix
	prevSubnet6 netip.Prefix
	ttl         time.Duration
	renewMargin time.Duration
	renewRetry  time.Duration
	backoffMin  time.Duration
	backoffMax  time.Duration
	log         *slog.Logger
	clock       Clock
	metrics     *metrics
	onExpired   func(expired bool)

	randMu sync.Mutex
	rng    *rand.Rand

	// recreateMu serialises re-creating our lease (renewal and watch can
	// both notice it vanished).
	recreateMu sync.Mutex

	mu           sync.Mutex
	lease        Lease
	leaseChanged chan struct{} // closed and replaced on every setLease
	expired      bool          // see RunFence
	// startList is ManagerOptions.StartList until the watch takes it.
	startList *LeaseList
}

// NewManager validates o and applies its defaults.
func NewManager(o ManagerOptions) (*Manager, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.applyDefaults()
	met, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	return &Manager{
		reg: o.Registry, cfg: o.Config, attrs: o.Attrs, prevSubnet: o.PreviousSubnet.Masked(),
		prevSubnet6: o.PreviousIPv6Subnet.Masked(),
		ttl:         o.TTL, renewMargin: o.RenewMargin, renewRetry: o.RenewRetry,
		backoffMin: defaultBackoffMin, backoffMax: defaultBackoffMax,
		log: o.Logger, clock: o.Clock, metrics: met, rng: o.Rand,
		leaseChanged: make(chan struct{}), onExpired: o.OnLeaseExpired, startList: o.StartList,
	}, nil
}

// listForStart is the start list while there is one (take: and forget
// it), else a fresh list; fresh reports which.
func (m *Manager) listForStart(ctx context.Context, take bool) (list LeaseList, fresh bool, err error) {
	m.mu.Lock()
	start := m.startList
	if take {
		m.startList = nil
	}
	m.mu.Unlock()
	if start != nil {
		return *start, false, nil
	}
	list, err = m.reg.ListLeases(ctx)
	return list, true, err
}

func (o *ManagerOptions) validate() error {
	switch {
	case o.Registry == nil:
		return errors.New("subnet manager: Registry is nil")
	case o.Config == nil:
		return errors.New("subnet manager: Config is nil")
	case o.Config.EnableIPv4 && !o.Attrs.PublicIP.Is4():
		return fmt.Errorf("subnet manager: Attrs.PublicIP %q is not an IPv4 address (the config enables IPv4)", o.Attrs.PublicIP)
	case !o.Config.EnableIPv4 && o.Attrs.PublicIP.IsValid():
		return fmt.Errorf("subnet manager: Attrs.PublicIP %s is set but the config has EnableIPv4 false", o.Attrs.PublicIP)
	case o.Config.EnableIPv6 && (!o.Attrs.PublicIPv6.Is6() || o.Attrs.PublicIPv6.Is4In6()):
		return fmt.Errorf("subnet manager: Attrs.PublicIPv6 %q is not an IPv6 address (the config enables IPv6)", o.Attrs.PublicIPv6)
	case o.TTL < 0 || o.RenewMargin < 0 || o.RenewRetry < 0:
		return fmt.Errorf("subnet manager: negative duration (TTL %s, RenewMargin %s, RenewRetry %s)", o.TTL, o.RenewMargin, o.RenewRetry)
	}
	ttl, margin := o.TTL, o.RenewMargin
	if ttl == 0 {
		ttl = DefaultLeaseTTL
	}
	if margin == 0 {
		margin = DefaultRenewMargin
	}
	if margin >= ttl {
		return fmt.Errorf("subnet manager: RenewMargin %s must be shorter than the lease TTL %s", margin, ttl)
	}
	return nil
}

func (o *ManagerOptions) applyDefaults() {
	if o.TTL == 0 {
		o.TTL = DefaultLeaseTTL
	}
	if o.RenewMargin == 0 {
		o.RenewMargin = DefaultRenewMargin
	}
	if o.RenewRetry == 0 {
		o.RenewRetry = DefaultRenewRetry
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = RealClock()
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
}

// Lease returns our current lease (zero before Acquire). Goroutine-safe.
func (m *Manager) Lease() Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lease
}

// setLease records our lease and wakes RunRenewal.
func (m *Manager) setLease(l Lease) {
	m.mu.Lock()
	m.lease = l
	close(m.leaseChanged)
	m.leaseChanged = make(chan struct{})
	m.mu.Unlock()
	m.metrics.setExpiration(l)
}

// leaseAndChange returns our lease and a channel closed when it changes.
func (m *Manager) leaseAndChange() (Lease, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lease, m.leaseChanged
}

// intN draws from the injected generator, which is not goroutine-safe.
func (m *Manager) intN(n int) int {
	m.randMu.Lock()
	defer m.randMu.Unlock()
	return m.rng.IntN(n)
}

// isOurs reports whether a lease value was written for this node: our
// PublicIP (PublicIPv6 when IPv6-only), and our identity or none (see
// PickOwnLease).
func (m *Manager) isOurs(attrs LeaseAttrs) bool {
	return carriesAddr(attrs, m.ownAddr()) && sameNode(attrs.NodeID, m.attrs.NodeID)
}

// ownAddr is the address our leases are found by: PublicIP, or PublicIPv6
// on an IPv6-only node.
func (m *Manager) ownAddr() netip.Addr { return OwnLeaseAddr(m.attrs) }

// OwnLeaseAddr is the address a node's lease is found by (PickOwnLease's
// publicIP): attrs.PublicIP, or attrs.PublicIPv6 when there is no IPv4.
func OwnLeaseAddr(attrs LeaseAttrs) netip.Addr {
	if attrs.PublicIP.IsValid() {
		return attrs.PublicIP
	}
	return attrs.PublicIPv6
}

// carriesAddr reports whether a lease carries addr as its PublicIP (an
// IPv4 addr) or PublicIPv6 (an IPv6 addr).
func carriesAddr(attrs LeaseAttrs, addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	if addr.Is4() {
		return attrs.PublicIP == addr
	}
	return attrs.PublicIPv6 == addr
}

// AttrsEqual reports whether two lease values are the same, comparing the
// backend data as JSON (insignificant whitespace ignored).
func AttrsEqual(a, b LeaseAttrs) bool {
	return a.PublicIP == b.PublicIP && a.PublicIPv6 == b.PublicIPv6 &&
		a.BackendType == b.BackendType && a.PrivateIP == b.PrivateIP && a.NodeID == b.NodeID &&
		bytes.Equal(a.SameSiteKey, b.SameSiteKey) &&
		rawEqual(a.BackendData, b.BackendData) && rawEqual(a.BackendV6Data, b.BackendV6Data)
}

// rawEqual compares JSON values: byte-equal, equal once compacted, or
// equal as decoded values (key order and escaping ignored).
func rawEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) || bytes.Equal(compactRaw(a), compactRaw(b)) {
		return true
	}
	va, errA := decodeAny(a)
	vb, errB := decodeAny(b)
	return errA == nil && errB == nil && reflect.DeepEqual(va, vb)
}

func decodeAny(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}
