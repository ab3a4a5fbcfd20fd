package iptables

import (
	"context"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// wait returns after d on clock, or as soon as ctx ends.
func wait(ctx context.Context, clock subnet.Clock, d time.Duration) {
	t := clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	}
}
