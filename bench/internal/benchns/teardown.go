package benchns

import (
	"context"
	"time"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// flushTimeout bounds each flush command.
const flushTimeout = 2 * time.Minute

// FlushRoutesThenNexthops deletes every route on flannel.1 in namespace,
// then every nexthop object, before the namespace is deleted. Deleting a
// namespace (or a device) whose routes still use nexthop objects makes
// the kernel walk the whole FIB once per nexthop while holding the rtnl
// lock: minutes at 100,000, during which every netlink write on the
// machine waits. Routes first, then nexthops, takes about a second at
// 50,000 (docs/performance.md). Errors are ignored: a kernel without
// nexthop objects has none to flush.
func FlushRoutesThenNexthops(namespace string) {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	_, _ = netnsutil.Exec(ctx, namespace, "ip", "route", "flush", "dev", "flannel.1")
	_, _ = netnsutil.Exec(ctx, namespace, "ip", "nexthop", "flush")
}
