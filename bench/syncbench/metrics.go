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

func (m metrics) sync() syncView {
	_, ok := m["overlayd_sync_in_sync"]
	return syncView{
		inSync:        m["overlayd_sync_in_sync"] == 1,
		peers:         int(m["overlayd_sync_peers"]),
		neighbours:    int(m[`overlayd_sync_kernel_entries{entry="neighbour"}`]),
		fdb:           int(m[`overlayd_sync_kernel_entries{entry="fdb"}`]),
		routes:        int(m[`overlayd_sync_kernel_entries{entry="route"}`]),
		nexthops:      int(m[`overlayd_sync_kernel_entries{entry="nexthop"}`]),
		nexthopMode:   m[`overlayd_sync_route_mode{mode="nexthop"}`] == 1,
		writes:        m.sum("overlayd_sync_writes_total"),
		fullPasses:    m[`overlayd_sync_passes_total{kind="full"}`],
		incrPasses:    m[`overlayd_sync_passes_total{kind="incremental"}`],
		passSeconds:   m["overlayd_sync_pass_duration_seconds_sum"],
		passesTimed:   m["overlayd_sync_pass_duration_seconds_count"],
		writeErrors:   m.sum("overlayd_sync_errors_total"),
		dumps:         m.sum("overlayd_sync_dumps_total"),
		dumpSeconds:   m["overlayd_sync_dump_duration_seconds_sum"],
		lostDumps:     m[`overlayd_sync_dumps_total{reason="events-lost"}`],
		eventChanges:  m["overlayd_sync_kernel_event_changes_total"],
		processRSS:    m["process_resident_memory_bytes"],
		scrapeMissing: !ok,
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
