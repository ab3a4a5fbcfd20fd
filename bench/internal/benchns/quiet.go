package benchns

import (
	"context"
	"fmt"
	"time"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// Quiet-probe tuning: the kernel counts as quiet after quietRuns probes in
// a row took less than quietProbe each.
const (
	quietProbe = 20 * time.Millisecond
	quietRuns  = 3
	quietGap   = 50 * time.Millisecond
	quietLimit = time.Minute
)

// WaitQuiet waits until the kernel's rtnl lock is free again. Deleting a
// namespace returns at once, but the kernel flushes its entries afterwards
// while holding the lock: about a second for 10,000 nexthop objects,
// which would stall the next measurement's every netlink write. The probe
// is `ip link set lo up` (a no-op that takes the lock) in the named
// namespace.
func WaitQuiet(ctx context.Context, namespace string) error {
	h, err := netnsutil.Handle(namespace)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("quiet probe in %s: find lo: %w", namespace, err)
	}
	deadline := time.Now().Add(quietLimit)
	for runs := 0; runs < quietRuns; {
		start := time.Now()
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("quiet probe in %s: set lo up: %w", namespace, err)
		}
		if time.Since(start) < quietProbe {
			runs++
		} else {
			runs = 0
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("quiet probe in %s: rtnl still busy after %s", namespace, quietLimit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(quietGap):
		}
	}
	return nil
}
