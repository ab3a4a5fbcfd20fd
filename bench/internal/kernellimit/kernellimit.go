// Package kernellimit measures the kernel's own limit for a peer set: the
// time iproute2 takes to install the same neighbour, FDB and route
// entries overlayd would (also with nexthop objects) from batch files into
// a fresh namespace, and the same writes from Go through netlink. The
// benchmarks report overlayd's figures as a ratio to it.
package kernellimit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/bench/internal/benchns"
	"github.com/overlayd/overlayd/bench/internal/fakepeers"
)

// Result is the kernel's limit: iproute2 installing the same
// entries from batch files into a fresh namespace with the same devices.
type Result struct {
	NeighSeconds float64 `json:"neigh_seconds"`
	FDBSeconds   float64 `json:"fdb_seconds"`
	RouteSeconds float64 `json:"route_seconds"`
	TotalSeconds float64 `json:"total_seconds"`
	// NexthopRouteSeconds installs the routes as nexthop objects plus
	// `nhid` routes instead; TotalNexthopSeconds is the total with them.
	NexthopRouteSeconds float64 `json:"nexthop_route_seconds"`
	TotalNexthopSeconds float64 `json:"total_nexthop_seconds"`
	// LibrarySeconds writes the same 3N entries from Go through
	// vishvananda/netlink, one request at a time in overlayd's order
	// (neighbours, FDB, routes) and with overlayd's messages: the kernel
	// plus the library, without the reconciler.
	LibrarySeconds float64 `json:"library_seconds"`
	// LibraryAllocMiB is what those writes allocated in the harness.
	LibraryAllocMiB float64 `json:"library_alloc_mib"`
	// IPv6: dual-stack peers (Options.IPv6): their IPv6 neighbours, FDB
	// entries and routes on flannel-v6.1 in the same namespaces, timed
	// apart and included in TotalSeconds and TotalNexthopSeconds (6N
	// entries then).
	IPv6 *IPv6Result `json:"ipv6,omitempty"`
}

// IPv6Result is the IPv6 half of a dual-stack kernel limit.
type IPv6Result struct {
	NeighSeconds        float64 `json:"neigh_seconds"`
	FDBSeconds          float64 `json:"fdb_seconds"`
	RouteSeconds        float64 `json:"route_seconds"`
	NexthopRouteSeconds float64 `json:"nexthop_route_seconds"`
}

// batchFiles are the iproute2 batch files for one peer set (the IPv6
// ones empty unless the peers are dual-stack).
type batchFiles struct {
	neigh, fdb, route, nexthop     string
	neigh6, fdb6, route6, nexthop6 string
}

// Options select what Measure times.
type Options struct {
	// NexthopOnly skips the classic routes and the library writes (both
	// quadratic in N: minutes at 50,000): RouteSeconds, TotalSeconds and
	// LibrarySeconds stay 0.
	NexthopOnly bool
	// IPv6: the peers are dual-stack; their IPv6 entries are timed too,
	// on flannel-v6.1 (the library writes stay IPv4 only).
	IPv6 bool
}

// Measure writes the batch files into dir and times them.
func Measure(ctx context.Context, peers []fakepeers.Peer, dir string) (Result, error) {
	return MeasureWith(ctx, peers, dir, Options{})
}

// MeasureWith is Measure with options.
func MeasureWith(ctx context.Context, peers []fakepeers.Peer, dir string, o Options) (Result, error) {
	var res Result
	files, err := writeBatchFiles(peers, dir, o.IPv6)
	if err != nil {
		return res, err
	}
	newNS := benchns.New
	if o.IPv6 {
		newNS = benchns.NewDual
		res.IPv6 = &IPv6Result{}
	}
	classic, err := newNS("base")
	if err != nil {
		return res, err
	}
	defer classic.Close()
	steps := []struct {
		out  *float64
		tool string
		file string
	}{
		{&res.NeighSeconds, "ip", files.neigh},
		{&res.FDBSeconds, "bridge", files.fdb},
		{&res.RouteSeconds, "ip", files.route},
	}
	if o.NexthopOnly {
		steps = steps[:2]
	}
	if o.IPv6 {
		v6 := res.IPv6
		steps = append(steps, []struct {
			out  *float64
			tool string
			file string
		}{{&v6.NeighSeconds, "ip", files.neigh6}, {&v6.FDBSeconds, "bridge", files.fdb6}}...)
		if !o.NexthopOnly {
			steps = append(steps, struct {
				out  *float64
				tool string
				file string
			}{&v6.RouteSeconds, "ip", files.route6})
		}
	}
	for _, s := range steps {
		if *s.out, err = timeBatch(ctx, classic.Name, s.tool, s.file); err != nil {
			return res, err
		}
	}
	classicRoutes := len(peers)
	if o.NexthopOnly {
		classicRoutes = 0
	}
	if err := expectEntries(classic, len(peers), classicRoutes, o.IPv6); err != nil {
		return res, err
	}
	if !o.NexthopOnly {
		res.TotalSeconds = res.NeighSeconds + res.FDBSeconds + res.RouteSeconds
		if v6 := res.IPv6; v6 != nil {
			res.TotalSeconds += v6.NeighSeconds + v6.FDBSeconds + v6.RouteSeconds
		}
	}

	withNH, err := newNS("basenh")
	if err != nil {
		return res, err
	}
	defer withNH.Close()
	if res.NexthopRouteSeconds, err = timeBatch(ctx, withNH.Name, "ip", files.nexthop); err != nil {
		return res, err
	}
	if v6 := res.IPv6; v6 != nil {
		if v6.NexthopRouteSeconds, err = timeBatch(ctx, withNH.Name, "ip", files.nexthop6); err != nil {
			return res, err
		}
	}
	if err := expectEntries(withNH, 0, len(peers), o.IPv6); err != nil {
		return res, err
	}
	res.TotalNexthopSeconds = res.NeighSeconds + res.FDBSeconds + res.NexthopRouteSeconds
	if v6 := res.IPv6; v6 != nil {
		res.TotalNexthopSeconds += v6.NeighSeconds + v6.FDBSeconds + v6.NexthopRouteSeconds
	}
	if o.NexthopOnly {
		return res, nil
	}
	var alloc uint64
	res.LibrarySeconds, alloc, err = timeLibraryWrites(ctx, peers)
	res.LibraryAllocMiB = float64(alloc) / (1 << 20)
	return res, err
}

// writeBatchFiles renders the entries overlayd programs for the peers
// (with ipv6, their IPv6 entries on flannel-v6.1 too; the nexthop ids
// then follow overlayd's split: 0xF1... for IPv4, 0xF2... for IPv6).
func writeBatchFiles(peers []fakepeers.Peer, dir string, ipv6 bool) (batchFiles, error) {
	var neigh, fdb, route, nh, neigh6, fdb6, route6, nh6 bytes.Buffer
	dev := "flannel.1"
	for _, p := range peers {
		fmt.Fprintf(&neigh, "neigh replace %s lladdr %s dev %s nud permanent\n", p.Gateway(), p.HardwareAddr(), dev)
		fmt.Fprintf(&fdb, "fdb replace %s dev %s dst %s self permanent\n", p.HardwareAddr(), dev, p.PublicIP)
		fmt.Fprintf(&route, "route replace %s via %s dev %s onlink\n", p.Subnet, p.Gateway(), dev)
	}
	for i, p := range peers {
		fmt.Fprintf(&nh, "nexthop replace id %d via %s dev %s onlink\n", i+1, p.Gateway(), dev)
		fmt.Fprintf(&nh, "route replace %s nhid %d\n", p.Subnet, i+1)
	}
	f := batchFiles{
		neigh: filepath.Join(dir, "neigh.batch"), fdb: filepath.Join(dir, "fdb.batch"),
		route: filepath.Join(dir, "route.batch"), nexthop: filepath.Join(dir, "nexthop-route.batch"),
	}
	files := map[string]*bytes.Buffer{f.neigh: &neigh, f.fdb: &fdb, f.route: &route, f.nexthop: &nh}
	if ipv6 {
		const dev6, idBase6 = "flannel-v6.1", 0xF2000000
		for i, p := range peers {
			fmt.Fprintf(&neigh6, "neigh replace %s lladdr %s dev %s nud permanent\n", p.Gateway6(), p.HardwareAddr6(), dev6)
			fmt.Fprintf(&fdb6, "fdb replace %s dev %s dst %s self permanent\n", p.HardwareAddr6(), dev6, p.PublicIP6)
			fmt.Fprintf(&route6, "route replace %s via %s dev %s onlink\n", p.Subnet6, p.Gateway6(), dev6)
			fmt.Fprintf(&nh6, "nexthop replace id %d via %s dev %s onlink\n", idBase6+i+1, p.Gateway6(), dev6)
			fmt.Fprintf(&nh6, "route replace %s nhid %d\n", p.Subnet6, idBase6+i+1)
		}
		f.neigh6, f.fdb6 = filepath.Join(dir, "neigh6.batch"), filepath.Join(dir, "fdb6.batch")
		f.route6, f.nexthop6 = filepath.Join(dir, "route6.batch"), filepath.Join(dir, "nexthop-route6.batch")
		files[f.neigh6], files[f.fdb6], files[f.route6], files[f.nexthop6] = &neigh6, &fdb6, &route6, &nh6
	}
	for path, buf := range files {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return f, fmt.Errorf("write batch file: %w", err)
		}
	}
	return f, nil
}

// timeBatch runs `<tool> -n <ns> -batch <file>` and returns its wall time
// (the process start, a few milliseconds, included).
func timeBatch(ctx context.Context, ns, tool, file string) (float64, error) {
	cmd := exec.CommandContext(ctx, tool, "-n", ns, "-batch", file)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, bytes.TrimSpace(out))
	}
	return took.Seconds(), nil
}

// expectEntries checks the scratch namespace's dump (of both devices
// with ipv6).
func expectEntries(ns *benchns.VXLANNamespace, neighAndFDB, routes int, ipv6 bool) error {
	devs := []struct {
		dev    backend.Device
		family int
	}{{ns.Device, unix.AF_INET}}
	if ipv6 {
		devs = append(devs, struct {
			dev    backend.Device
			family int
		}{ns.Device6, unix.AF_INET6})
	}
	for _, d := range devs {
		c, err := benchns.CountEntriesFamily(ns.Handle, d.dev.Index, d.family)
		if err != nil {
			return err
		}
		if c.Neighbours != neighAndFDB || c.FDB != neighAndFDB || c.Routes != routes {
			return fmt.Errorf("baseline in %s on %s: kernel has %+v, want %d neighbours, %d fdb, %d routes",
				ns.Name, d.dev.Name, c, neighAndFDB, neighAndFDB, routes)
		}
	}
	return nil
}
