// Package routebench measures how fast the kernel takes the per-peer
// routes through netlink, one request at a time as overlayd writes them:
// classic `<subnet> via <gw> dev flannel.1 onlink` routes (a distinct
// gateway each) against nexthop objects plus `<subnet> nhid <id>` routes.
// Each measurement runs in a fresh scratch namespace.
package routebench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/bench/internal/benchns"
	"github.com/overlayd/overlayd/bench/internal/fakepeers"
	"github.com/overlayd/overlayd/bench/internal/nexthop"
)

// Timing is one way of installing the routes.
type Timing struct {
	Seconds float64 `json:"seconds"`
	// PerSecond is routes per second over the whole run.
	PerSecond float64 `json:"routes_per_second"`
	// LastTenthPerSecond is the rate over the last 10% of the routes: the
	// marginal cost of one more route at this table size, what a single
	// peer event pays.
	LastTenthPerSecond float64 `json:"last_tenth_routes_per_second"`
	// TeardownSeconds is deleting flannel.1 afterwards: the kernel flushes
	// its routes (and nexthop objects) holding the rtnl lock, as when the
	// device is deleted or the namespace goes away.
	TeardownSeconds float64 `json:"teardown_seconds"`
}

// Result compares the two ways at one table size.
type Result struct {
	Routes  int    `json:"routes"`
	Classic Timing `json:"classic"`
	// Nexthop counts one nexthop object and one route per peer.
	Nexthop Timing `json:"nexthop"`
	// NexthopSupported is false when the kernel has no nexthop objects
	// (then Nexthop is zero).
	NexthopSupported bool `json:"nexthop_supported"`
}

// Measure installs n routes both ways.
func Measure(ctx context.Context, n int) (Result, error) {
	res := Result{Routes: n}
	peers, err := peersFor(n)
	if err != nil {
		return res, err
	}
	if res.Classic, err = inScratch(ctx, peers, installClassic); err != nil {
		return res, err
	}
	res.NexthopSupported = true
	res.Nexthop, err = inScratch(ctx, peers, installNexthop)
	if errors.Is(err, errNoNexthops) {
		res.NexthopSupported, err = false, nil
	}
	return res, err
}

func peersFor(n int) ([]fakepeers.Peer, error) {
	gen, err := fakepeers.NewGenerator(network, 24)
	if err != nil {
		return nil, err
	}
	return gen.Take(n)
}

// installer writes the routes in ns and calls mark after each one.
type installer func(ctx context.Context, ns *benchns.VXLANNamespace, peers []fakepeers.Peer, mark func(i int)) error

func inScratch(ctx context.Context, peers []fakepeers.Peer, install installer) (Timing, error) {
	ns, err := benchns.New("rtbench")
	if err != nil {
		return Timing{}, err
	}
	defer ns.Close()
	if err := benchns.WaitQuiet(ctx, ns.Name); err != nil {
		return Timing{}, err
	}
	n := len(peers)
	tenth := n - n/10
	var start, tenthAt time.Time
	start = time.Now()
	err = install(ctx, ns, peers, func(i int) {
		if i == tenth {
			tenthAt = time.Now()
		}
	})
	took := time.Since(start)
	if err != nil {
		return Timing{}, err
	}
	if err := verify(ns, n); err != nil {
		return Timing{}, err
	}
	t := Timing{Seconds: took.Seconds(), PerSecond: float64(n) / took.Seconds()}
	if last := start.Add(took).Sub(tenthAt); n/10 > 0 && last > 0 {
		t.LastTenthPerSecond = float64(n/10) / last.Seconds()
	}
	if t.TeardownSeconds, err = timeTeardown(ns); err != nil {
		return Timing{}, err
	}
	return t, benchns.WaitQuiet(ctx, ns.Name)
}

func installClassic(ctx context.Context, ns *benchns.VXLANNamespace, peers []fakepeers.Peer, mark func(int)) error {
	link := ns.Device.Index
	for i, p := range peers {
		if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		mark(i)
		dst := &net.IPNet{IP: p.Subnet.Addr().AsSlice(), Mask: net.CIDRMask(p.Subnet.Bits(), 32)}
		r := &netlink.Route{LinkIndex: link, Dst: dst, Gw: p.Gateway().AsSlice(), Table: unix.RT_TABLE_MAIN,
			Scope: netlink.SCOPE_UNIVERSE, Flags: int(netlink.FLAG_ONLINK)}
		if err := ns.Handle.RouteReplace(r); err != nil {
			return fmt.Errorf("route replace %s via %s onlink: %w", p.Subnet, p.Gateway(), err)
		}
	}
	return nil
}

var errNoNexthops = errors.New("kernel has no nexthop objects")

// network holds the benchmark's subnets.
var network = netip.MustParsePrefix("10.0.0.0/8")

func installNexthop(ctx context.Context, ns *benchns.VXLANNamespace, peers []fakepeers.Peer, mark func(int)) error {
	c, err := nexthop.Open(ns.Name)
	if err != nil {
		return err
	}
	defer c.Close()
	if ok, err := c.Supported(); err != nil {
		return err
	} else if !ok {
		return errNoNexthops
	}
	link := ns.Device.Index
	for i, p := range peers {
		if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		mark(i)
		id := uint32(i + 1)
		if err := c.ReplaceNexthop(id, p.Gateway(), link); err != nil {
			return err
		}
		if err := c.ReplaceRoute(p.Subnet, id); err != nil {
			return err
		}
	}
	return nil
}

// verify checks that the dump shows n routes with a gateway on the device
// (nhid routes show their nexthop's gateway: nexthop_compat_mode).
func verify(ns *benchns.VXLANNamespace, n int) error {
	c, err := benchns.CountEntries(ns.Handle, ns.Device.Index)
	if err != nil {
		return err
	}
	if c.Routes != n {
		return fmt.Errorf("route bench in %s: kernel shows %d routes on %s, want %d", ns.Name, c.Routes, ns.Device.Name, n)
	}
	return nil
}

func timeTeardown(ns *benchns.VXLANNamespace) (float64, error) {
	link, err := ns.Handle.LinkByIndex(ns.Device.Index)
	if err != nil {
		return 0, fmt.Errorf("in netns %s: find %s: %w", ns.Name, ns.Device.Name, err)
	}
	start := time.Now()
	if err := ns.Handle.LinkDel(link); err != nil {
		return 0, fmt.Errorf("in netns %s: delete %s: %w", ns.Name, ns.Device.Name, err)
	}
	return time.Since(start).Seconds(), nil
}
