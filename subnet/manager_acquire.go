package subnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path"
)

// FindOwnLease returns the lease Acquire will reuse, if any (see
// PickOwnLease), so that the VTEP MAC can be reused before the device is
// created. The error wraps ErrPublicIPInUse when another node's lease
// carries our PublicIP.
func (m *Manager) FindOwnLease(ctx context.Context) (Lease, bool, error) {
	list, err := m.reg.ListLeases(ctx)
	if err != nil {
		return Lease{}, false, fmt.Errorf("find own lease: %w", err)
	}
	return PickOwnLease(list.Leases, m.ownAddr(), m.attrs.NodeID, m.cfg)
}

// ErrPublicIPInUse: a lease carries our PublicIP but another node's
// identity. Two nodes cannot share one PublicIP (peers could not tell
// their VXLAN apart), so neither takes the other's lease.
var ErrPublicIPInUse = errors.New("another node's lease carries our PublicIP")

// PickOwnLease is the one answer to "which lease is ours". A lease is
// ours when it carries publicIP (as PublicIP, or as PublicIPv6 when
// publicIP is an IPv6 address: an IPv6-only node, see OwnLeaseAddr) and either our node identity or none
// (flanneld's leases, older overlayd's: matched by PublicIP alone, as
// flanneld does); an empty nodeID (identity unknown) matches any. Among
// ours, a fitting reservation beats a fitting lease, which beats one that
// no longer fits cfg; the first of equals wins. A lease with publicIP and
// another identity means a second node claims our address: the error
// wraps ErrPublicIPInUse and names both identities and the key, and
// nothing is picked. Acquire reuses the lease picked (when it fits), so
// the daemon asks it for the VTEP MAC to keep.
func PickOwnLease(leases []Lease, publicIP netip.Addr, nodeID string, cfg *Config) (Lease, bool, error) {
	best, found := Lease{}, false
	for _, l := range leases {
		if !carriesAddr(l.Attrs, publicIP) {
			continue
		}
		if !sameNode(l.Attrs.NodeID, nodeID) {
			return Lease{}, false, fmt.Errorf("%w: lease %s (PublicIP %s) belongs to node identity %s, and this node's identity is %s: "+
				"two nodes share one PublicIP (a shared SNAT address, a cloned env file, a missing --public-ip?); give each node its own "+
				"--public-ip, or delete the key if that node is gone for good", ErrPublicIPInUse, l.ID().KeyName(), publicIP, l.Attrs.NodeID, nodeID)
		}
		if !found || ownRank(cfg, l) > ownRank(cfg, best) {
			best, found = l, true
		}
	}
	return best, found, nil
}

// sameNode reports whether a lease's node identity can be ours: equal,
// or either unknown.
func sameNode(leaseID, ours string) bool { return leaseID == "" || ours == "" || leaseID == ours }

// ownRank orders our own leases: fitting reservation > fitting > other.
func ownRank(cfg *Config, l Lease) int {
	rank := 0
	if cfg.Fits(l.ID()) {
		rank += 2
		if l.IsReservation() {
			rank++
		}
	}
	return rank
}

// acquireState carries what earlier attempts of one Acquire learnt.
type acquireState struct {
	lost     map[LeaseID]bool // creation races lost
	why      string           // why a new subnet is needed
	prevDone bool             // previous subnet considered
}

// Acquire obtains our subnet lease (docs/compatibility.md, "Choosing a subnet"): our existing lease (by
// PublicIP), else the previous subnet if free, else a random free one.
// Lost creation races are retried with another candidate.
func (m *Manager) Acquire(ctx context.Context) (Lease, error) {
	st := &acquireState{lost: map[LeaseID]bool{}}
	for attempt := 1; attempt <= maxAcquireAttempts; attempt++ {
		list, err := m.acquireList(ctx, attempt)
		if err != nil {
			return Lease{}, fmt.Errorf("acquire subnet: list leases: %w", err)
		}
		l, ok, err := m.tryAcquire(ctx, list, st)
		if err != nil {
			return Lease{}, err
		}
		if ok {
			m.setLease(l)
			return l, nil
		}
	}
	return Lease{}, fmt.Errorf("acquire subnet: lost the creation race %d times in a row", maxAcquireAttempts)
}

// acquireList is the list an attempt works from: the start list (if
// any) first, a fresh one after a lost race.
func (m *Manager) acquireList(ctx context.Context, attempt int) (LeaseList, error) {
	if attempt == 1 {
		list, _, err := m.listForStart(ctx, false)
		return list, err
	}
	return m.reg.ListLeases(ctx)
}

// tryAcquire makes one pass over a fresh list; ok false means "re-list
// and try again".
func (m *Manager) tryAcquire(ctx context.Context, list LeaseList, st *acquireState) (Lease, bool, error) {
	if _, _, err := PickOwnLease(list.Leases, m.ownAddr(), m.attrs.NodeID, m.cfg); err != nil {
		return Lease{}, false, fmt.Errorf("acquire subnet: %w", err)
	}
	others, l, ok, err := m.reuseByPublicIP(ctx, list.Leases)
	if err != nil || ok {
		return l, ok, err
	}
	taken := takenSubnets(others, list.Skipped, st.lost)
	if l, ok, err := m.reusePrevious(ctx, others, taken, st); err != nil || ok {
		return l, ok, err
	}
	return m.allocateNew(ctx, taken, st)
}

// reuseByPublicIP updates our fitting lease with our attributes, deletes
// our leases that no longer fit, and returns the leases left for others.
func (m *Manager) reuseByPublicIP(ctx context.Context, leases []Lease) (others []Lease, l Lease, ok bool, err error) {
	var own []Lease
	for _, l := range leases {
		switch {
		case !m.isOurs(l.Attrs):
			others = append(others, l)
		case m.cfg.Fits(l.ID()):
			own = append(own, l)
		default:
			if err := m.deleteMisfit(ctx, l); err != nil {
				return nil, Lease{}, false, err
			}
		}
	}
	if len(own) == 0 {
		return others, Lease{}, false, nil
	}
	best, _, _ := PickOwnLease(own, m.ownAddr(), m.attrs.NodeID, m.cfg)
	for _, l := range own {
		if l.ID() != best.ID() {
			m.log.Warn("another lease also carries our PublicIP; leaving it to expire",
				"subnet", l.ID(), "public_ip", OwnLeaseAddr(l.Attrs), "using", best.ID())
			others = append(others, l)
		}
	}
	l, ok, err = m.updateOwn(ctx, best)
	return others, l, ok, err
}

func (m *Manager) deleteMisfit(ctx context.Context, l Lease) error {
	m.log.Info("deleting our old lease: it no longer fits the network config",
		"subnet", l.ID(), "public_ip", OwnLeaseAddr(l.Attrs), "subnet_len", m.cfg.SubnetLen,
		"subnet_min", m.cfg.SubnetMin, "subnet_max", m.cfg.SubnetMax)
	if err := m.reg.DeleteLease(ctx, l.ID()); err != nil && !errors.Is(err, ErrLeaseNotFound) {
		return fmt.Errorf("acquire subnet: delete misfit lease %s: %w", l.ID(), err)
	}
	return nil
}

func (m *Manager) updateOwn(ctx context.Context, old Lease) (Lease, bool, error) {
	want := Lease{Subnet: old.Subnet, IPv6Subnet: old.IPv6Subnet, Attrs: m.attrs, Expiration: old.Expiration}
	exp, err := m.reg.UpdateLease(ctx, want, m.ttl)
	if errors.Is(err, ErrLeaseNotFound) {
		m.log.Info("our lease vanished while reusing it; retrying", "subnet", old.ID())
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("acquire subnet: update own lease %s: %w", old.ID(), err)
	}
	want.Expiration = exp
	m.log.Info("reusing our lease found by PublicIP", "subnet", want.ID(),
		"public_ip", m.ownAddr(), "reservation", want.IsReservation(), "expires", exp)
	return want, true, nil
}

// previousID is the lease of the previous subnet file: its IPv4 subnet
// and IPv6 subnet, each only when given and its family is enabled (a
// subnet file of another family set-up still lends the common family).
func (m *Manager) previousID() LeaseID {
	var id LeaseID
	if m.cfg.EnableIPv4 {
		id.Subnet = m.prevSubnet
	}
	if m.cfg.EnableIPv6 {
		id.IPv6Subnet = m.prevSubnet6
	}
	return id
}

// fitsWhereGiven reports whether each subnet id has is in range of its
// family (a missing family is allocated afresh).
func (c *Config) fitsWhereGiven(id LeaseID) bool {
	return (!id.Subnet.IsValid() || c.InRange(id.Subnet)) && (!id.IPv6Subnet.IsValid() || c.InRangeV6(id.IPv6Subnet))
}

// reusePrevious re-creates the subnets of the previous subnet file when
// they fit the config and nobody holds them; an enabled family the file
// does not name (IPv6 just turned on) gets a free subnet.
func (m *Manager) reusePrevious(ctx context.Context, others []Lease, taken []netip.Prefix, st *acquireState) (Lease, bool, error) {
	prev := m.previousID()
	if !prev.IsValid() {
		st.why = "no usable lease carries our PublicIP and there is no previous subnet"
		return Lease{}, false, nil
	}
	if st.prevDone {
		return Lease{}, false, nil
	}
	if !m.cfg.fitsWhereGiven(prev) {
		st.prevDone = true
		st.why = fmt.Sprintf("previous subnet %s does not fit the network config", prev)
		return Lease{}, false, nil
	}
	for _, l := range others {
		if overlapsID(l.ID(), prev) {
			st.prevDone = true
			st.why = fmt.Sprintf("previous subnet %s is held by %s (PublicIP %s)", prev, l.ID(), OwnLeaseAddr(l.Attrs))
			return Lease{}, false, nil
		}
	}
	given := prev
	if err := m.completeFamilies(&prev, taken); err != nil {
		return Lease{}, false, err
	}
	l, ok, err := m.create(ctx, prev, st)
	if ok {
		m.log.Info("reusing the subnet of the previous subnet file", "subnet", given, "expires", l.Expiration)
		if prev != given {
			m.log.Info("allocated a new subnet for the family the previous subnet file lacks", "subnet", prev)
		}
	} else if err == nil {
		st.prevDone = true
		st.why = fmt.Sprintf("another node took previous subnet %s first", given)
	}
	return l, ok, err
}

// completeFamilies picks a free subnet for each enabled family id lacks.
func (m *Manager) completeFamilies(id *LeaseID, taken []netip.Prefix) error {
	var err error
	if m.cfg.EnableIPv4 && !id.Subnet.IsValid() {
		if id.Subnet, _, err = m.pickFree(true, taken); err != nil {
			return err
		}
	}
	if m.cfg.EnableIPv6 && !id.IPv6Subnet.IsValid() {
		if id.IPv6Subnet, _, err = m.pickFree(false, taken); err != nil {
			return err
		}
	}
	return nil
}

// pickFree draws one of the first MaxCandidates free subnets of a family
// and says how many there were.
func (m *Manager) pickFree(v4 bool, taken []netip.Prefix) (netip.Prefix, int, error) {
	c := m.cfg
	if v4 {
		cands := Candidates(c, taken, MaxCandidates)
		if len(cands) == 0 {
			return netip.Prefix{}, 0, fmt.Errorf("acquire subnet: out of subnets: every /%d from SubnetMin %s to SubnetMax %s of %s is taken",
				c.SubnetLen, c.SubnetMin, c.SubnetMax, c.Network)
		}
		return cands[m.intN(len(cands))], len(cands), nil
	}
	cands := CandidatesV6(c, taken, MaxCandidates)
	if len(cands) == 0 {
		return netip.Prefix{}, 0, fmt.Errorf("acquire subnet: out of IPv6 subnets: every /%d from IPv6SubnetMin %s to IPv6SubnetMax %s of %s is taken",
			c.IPv6SubnetLen, c.IPv6SubnetMin, c.IPv6SubnetMax, c.IPv6Network)
	}
	return cands[m.intN(len(cands))], len(cands), nil
}

// overlapsID reports whether two leases share addresses in either family.
func overlapsID(a, b LeaseID) bool {
	return (a.Subnet.IsValid() && b.Subnet.IsValid() && a.Subnet.Overlaps(b.Subnet)) ||
		(a.IPv6Subnet.IsValid() && b.IPv6Subnet.IsValid() && a.IPv6Subnet.Overlaps(b.IPv6Subnet))
}

// allocateNew picks a random free subnet of each enabled family.
func (m *Manager) allocateNew(ctx context.Context, taken []netip.Prefix, st *acquireState) (Lease, bool, error) {
	var pick LeaseID
	var free4, free6 int
	var err error
	if m.cfg.EnableIPv4 {
		if pick.Subnet, free4, err = m.pickFree(true, taken); err != nil {
			return Lease{}, false, err
		}
	}
	if m.cfg.EnableIPv6 {
		if pick.IPv6Subnet, free6, err = m.pickFree(false, taken); err != nil {
			return Lease{}, false, err
		}
	}
	l, ok, err := m.create(ctx, pick, st)
	if ok {
		args := []any{"subnet", pick, "why", st.why, "free_candidates", free4, "expires", l.Expiration}
		if m.cfg.EnableIPv6 {
			args = append(args, "free_ipv6_candidates", free6)
		}
		m.log.Info("allocated a new subnet", args...)
	}
	return l, ok, err
}

// create writes a new lease atomically; ok false when the race was lost.
func (m *Manager) create(ctx context.Context, id LeaseID, st *acquireState) (Lease, bool, error) {
	exp, err := m.reg.CreateLease(ctx, id, m.attrs, m.ttl)
	if errors.Is(err, ErrLeaseExists) {
		m.log.Info("another node created the same subnet first; trying another", "subnet", id)
		st.lost[id] = true
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("acquire subnet: create lease %s: %w", id, err)
	}
	return Lease{Subnet: id.Subnet, IPv6Subnet: id.IPv6Subnet, Attrs: m.attrs, Expiration: exp}, true, nil
}

// takenSubnets lists every subnet in use, of both families: leases,
// malformed entries whose key still names a subnet, and subnets we lost a
// race for.
func takenSubnets(leases []Lease, skipped []SkippedKey, lost map[LeaseID]bool) []netip.Prefix {
	taken := make([]netip.Prefix, 0, len(leases)+len(skipped)+len(lost))
	add := func(id LeaseID) {
		for _, p := range []netip.Prefix{id.Subnet, id.IPv6Subnet} {
			if p.IsValid() {
				taken = append(taken, p)
			}
		}
	}
	for _, l := range leases {
		add(l.ID())
	}
	for _, s := range skipped {
		if id, err := ParseLeaseIDName(path.Base(s.Key)); err == nil {
			add(id)
		}
	}
	for id := range lost {
		add(id)
	}
	return taken
}
