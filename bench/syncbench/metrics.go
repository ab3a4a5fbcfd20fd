package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/overlayd/overlayd/internal/lab"
)

// metricsURL is overlayd's default --metrics-addr, inside the node's
// namespace.
const metricsURL = "http://127.0.0.1:9473/metrics"

// metrics is one scrape: sample name with its label set exactly as
// exposed (`name{a="x",b="y"}`), to value.
type metrics map[string]float64

// scrapeMetrics reads the node agent's /metrics from inside ns.
func scrapeMetrics(ctx context.Context, ns string) (metrics, error) {
	status, body, err := lab.GetIn(ctx, ns, metricsURL)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", metricsURL, status)
	}
	return parseMetrics(body)
}

// parseMetrics reads the Prometheus text format, skipping comments.
func parseMetrics(text string) (metrics, error) {
	m := metrics{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: value: %w", line, err)
		}
		m[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return m, nil
}

// sum adds every sample of the metric name (all label sets).
func (m metrics) sum(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// syncView is what the harness reads from overlayd_sync_*.
type syncView struct {
	inSync     bool
	peers      int
	neighbours int
	fdb        int
	routes     int
	nexthops   int
	// nexthopMode: overlayd reports nexthop routes in use
	// (overlayd_sync_route_mode{mode="nexthop"}).
	nexthopMode bool
	writes      float64 // every netlink write (add and del, all kinds)
	fullPasses  float64
	incrPasses  float64
	passSeconds float64 // pass_duration_seconds_sum
	passesTimed float64 // pass_duration_seconds_count
	writeErrors float64
	// dumps counts the full kernel reads (every reason), dumpSeconds
	// their summed duration; lostDumps those after lost notifications;
	// eventChanges the notifications that changed overlayd's view of
	// its entries (someone else's changes, not its own echoes).
	dumps, dumpSeconds, lostDumps, eventChanges float64
	processRSS                                  float64
	scrapeMissing                               bool
}

// sync is the reconciler's view: the unlabelled series of an IPv4-only
// node, or, once the node runs the IPv6 plane too (its series carry a
// family label), both planes together: in sync when both are, each count
// the planes' common one (-1 while they differ: converged(n) and "none
// left" then mean both), writes, passes and errors summed.
func (m metrics) sync() syncView {
	_, v4 := m[`overlayd_sync_in_sync{family="ipv4"}`]
	_, v6 := m[`overlayd_sync_in_sync{family="ipv6"}`]
	switch {
	case v4 && v6:
		return combine(m.syncOf(`family="ipv4"`), m.syncOf(`family="ipv6"`))
	case v6:
		return m.syncOf(`family="ipv6"`)
	case v4:
		return m.syncOf(`family="ipv4"`)
	}
	return m.syncOf("")
}

// syncOf reads the series with the label family (`family="ipv6"`, or ""
// for none), which sorts between entry/kind and mode as exposed.
func (m metrics) syncOf(family string) syncView {
	key := func(name, before, after string) string {
		var ls []string
		for _, l := range []string{before, family, after} {
			if l != "" {
				ls = append(ls, l)
			}
		}
		if len(ls) == 0 {
			return name
		}
		return name + "{" + strings.Join(ls, ",") + "}"
	}
	_, ok := m[key("overlayd_sync_in_sync", "", "")]
	return syncView{
		inSync:        m[key("overlayd_sync_in_sync", "", "")] == 1,
		peers:         int(m[key("overlayd_sync_peers", "", "")]),
		neighbours:    int(m[key("overlayd_sync_kernel_entries", `entry="neighbour"`, "")]),
		fdb:           int(m[key("overlayd_sync_kernel_entries", `entry="fdb"`, "")]),
		routes:        int(m[key("overlayd_sync_kernel_entries", `entry="route"`, "")]),
		nexthops:      int(m[key("overlayd_sync_kernel_entries", `entry="nexthop"`, "")]),
		nexthopMode:   m[key("overlayd_sync_route_mode", "", `mode="nexthop"`)] == 1,
		writes:        m.sumFamily("overlayd_sync_writes_total", family),
		fullPasses:    m[key("overlayd_sync_passes_total", "", `kind="full"`)],
		incrPasses:    m[key("overlayd_sync_passes_total", "", `kind="incremental"`)],
		passSeconds:   m[key("overlayd_sync_pass_duration_seconds_sum", "", "")],
		passesTimed:   m[key("overlayd_sync_pass_duration_seconds_count", "", "")],
		writeErrors:   m.sumFamily("overlayd_sync_errors_total", family),
		dumps:         m.sumFamily("overlayd_sync_dumps_total", family),
		dumpSeconds:   m[key("overlayd_sync_dump_duration_seconds_sum", "", "")],
		lostDumps:     m[key("overlayd_sync_dumps_total", "", `reason="events-lost"`)],
		eventChanges:  m[key("overlayd_sync_kernel_event_changes_total", "", "")],
		processRSS:    m["process_resident_memory_bytes"],
		scrapeMissing: !ok,
	}
}

// sumFamily is sum over the series of name carrying the label family
// (all series when family is "").
func (m metrics) sumFamily(name, family string) float64 {
	if family == "" {
		return m.sum(name)
	}
	var s float64
	for k, v := range m {
		if strings.HasPrefix(k, name+"{") && strings.Contains(k, family) {
			s += v
		}
	}
	return s
}

// same is the planes' common count, or -1 while they differ: a count
// the harness waits for (N at convergence, 0 after removing every peer)
// is then reached only when both planes reach it.
func same(a, b int) int {
	if a != b {
		return -1
	}
	return a
}

// combine is the two planes' views as one (see sync).
func combine(a, b syncView) syncView {
	return syncView{
		inSync: a.inSync && b.inSync, peers: same(a.peers, b.peers),
		neighbours: same(a.neighbours, b.neighbours), fdb: same(a.fdb, b.fdb), routes: same(a.routes, b.routes),
		nexthops: same(a.nexthops, b.nexthops), nexthopMode: a.nexthopMode && b.nexthopMode,
		writes: a.writes + b.writes, fullPasses: a.fullPasses + b.fullPasses, incrPasses: a.incrPasses + b.incrPasses,
		passSeconds: a.passSeconds + b.passSeconds, passesTimed: a.passesTimed + b.passesTimed,
		writeErrors: a.writeErrors + b.writeErrors, processRSS: a.processRSS,
		dumps: a.dumps + b.dumps, dumpSeconds: a.dumpSeconds + b.dumpSeconds, lostDumps: a.lostDumps + b.lostDumps,
		eventChanges:  a.eventChanges + b.eventChanges,
		scrapeMissing: a.scrapeMissing || b.scrapeMissing,
	}
}

// converged: in sync with n peers and n entries of each kind.
func (v syncView) converged(n int) bool {
	return v.inSync && v.peers == n && v.neighbours == n && v.fdb == n && v.routes == n
}

func prefixOf(ip net.IP, mask net.IPMask) netip.Prefix {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}
	}
	ones, bits := mask.Size()
	if bits == 0 {
		return netip.Prefix{}
	}
	a = a.Unmap()
	if a.Is4() && bits == 128 {
		ones -= 96
	}
	return netip.PrefixFrom(a, ones).Masked()
}
