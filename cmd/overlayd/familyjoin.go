package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/overlayd/overlayd/iptables"
)

// A dual-stack node keeps two rule sets and two peer filters, one per
// family; the daemon sees one of each. joinRules and joinFilters return
// the only one when a family is off, so an IPv4-only node runs exactly
// the IPv4 keeper as before.

// familyRules is the IPv4 and the IPv6 rules as one rulesKeeper.
type familyRules struct{ v4, v6 rulesKeeper }

// joinRules returns v4 and v6 as one keeper; either may be nil.
func joinRules(v4, v6 rulesKeeper) rulesKeeper {
	return joinFamilies(v4, v6, func() rulesKeeper { return familyRules{v4: v4, v6: v6} })
}

// joinFamilies returns the only one of v4 and v6 that is not nil (nil if
// neither is), else both(), which joins them.
func joinFamilies[T comparable](v4, v6 T, both func() T) T {
	var none T
	switch {
	case v6 == none:
		return v4
	case v4 == none:
		return v6
	}
	return both()
}

// Ensure checks both families; a failure of one does not stop the other.
func (r familyRules) Ensure() error {
	return joinFamilyErrs(r.v4.Ensure(), r.v6.Ensure())
}

// Run keeps both families' rules in place until ctx ends.
func (r familyRules) Run(ctx context.Context) error {
	return runBoth(func() error { return r.v4.Run(ctx) }, func() error { return r.v6.Run(ctx) })
}

// Status is the two families' last checks as one: in place when both
// are, the repairs of both, the older check time (so a stuck family
// shows), the errors of both naming their family.
func (r familyRules) Status() iptables.Status {
	s4, s6 := r.v4.Status(), r.v6.Status()
	st := iptables.Status{
		LastCheck: s4.LastCheck, InPlace: s4.InPlace && s6.InPlace,
		Repairs: s4.Repairs + s6.Repairs, LastError: joinFamilyErrs(s4.LastError, s6.LastError),
	}
	if s6.LastCheck.Before(st.LastCheck) {
		st.LastCheck = s6.LastCheck
	}
	return st
}

// familyFilter is the IPv4 and the IPv6 VXLAN peer filters as one: each
// gets the peers' addresses of its family.
type familyFilter struct{ v4, v6 vxlanFilter }

// joinFilters returns v4 and v6 as one filter; either may be nil.
func joinFilters(v4, v6 vxlanFilter) vxlanFilter {
	return joinFamilies(v4, v6, func() vxlanFilter { return familyFilter{v4: v4, v6: v6} })
}

// SetPeers gives each family's filter the peers of its family.
func (f familyFilter) SetPeers(peers []netip.Addr) error {
	v4, v6 := splitFamilies(peers)
	return joinFamilyErrs(f.v4.SetPeers(v4), f.v6.SetPeers(v6))
}

// Install puts both filters in place; either failing fails the start
// (fail closed).
func (f familyFilter) Install() error {
	return joinFamilyErrs(f.v4.Install(), f.v6.Install())
}

// Run keeps both filters in place until ctx ends.
func (f familyFilter) Run(ctx context.Context, every time.Duration) error {
	return runBoth(func() error { return f.v4.Run(ctx, every) }, func() error { return f.v6.Run(ctx, every) })
}

// splitFamilies splits addresses into IPv4 (including IPv4-mapped IPv6)
// and IPv6; invalid ones are dropped.
func splitFamilies(addrs []netip.Addr) (v4, v6 []netip.Addr) {
	for _, a := range addrs {
		switch a = a.Unmap(); {
		case a.Is4():
			v4 = append(v4, a)
		case a.Is6():
			v6 = append(v6, a)
		}
	}
	return v4, v6
}

// joinFamilyErrs joins the two families' errors, each naming its family;
// nil when both are.
func joinFamilyErrs(err4, err6 error) error {
	var errs []error
	if err4 != nil {
		errs = append(errs, fmt.Errorf("ipv4: %w", err4))
	}
	if err6 != nil {
		errs = append(errs, fmt.Errorf("ipv6: %w", err6))
	}
	return errors.Join(errs...)
}

// runBoth runs a and b at once and returns when both have, with their
// errors.
func runBoth(a, b func() error) error {
	var wg sync.WaitGroup
	var errB error
	wg.Add(1)
	go func() {
		defer wg.Done()
		errB = b()
	}()
	errA := a()
	wg.Wait()
	return joinFamilyErrs(errA, errB)
}
