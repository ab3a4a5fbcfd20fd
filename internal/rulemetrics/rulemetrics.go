// Package rulemetrics holds the metrics the iptables and the nftables
// rule modes both export, under the same names (docs/metrics.md), so
// dashboards and alerts work in either mode.
package rulemetrics

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Register adds c to reg (nil: not exported). A collector already
// registered under the same name and type, by another manager of the same
// family, is shared.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metric: %w", err)
}

// Rules are the metrics of a rule manager's checks.
type Rules struct {
	Resyncs prometheus.Counter
	Repairs *prometheus.CounterVec // labels table, chain
	Errors  prometheus.Counter
}

// Name prefixes of the metrics of each address family. IPv4 keeps the
// names overlayd always exported (both rule modes); the IPv6 rules
// (ip6tables) and the IPv6 device's peer filter have names of their own,
// so that each family's checks, repairs and errors can be told apart
// (docs/metrics.md).
const (
	rulesIPv4      = "overlayd_iptables"
	rulesIPv6      = "overlayd_ip6tables"
	peerFilterIPv4 = "overlayd_vxlan_peer_filter"
	peerFilterIPv6 = "overlayd_vxlan_v6_peer_filter"
)

// NewRules registers the rule check metrics (IPv4, or the only family of
// the nftables mode) with reg (nil: not exported).
func NewRules(reg prometheus.Registerer) (*Rules, error) {
	return newRules(reg, rulesIPv4, "iptables")
}

// NewRulesIPv6 registers the ip6tables rule check metrics with reg (nil:
// not exported).
func NewRulesIPv6(reg prometheus.Registerer) (*Rules, error) {
	return newRules(reg, rulesIPv6, "ip6tables")
}

func newRules(reg prometheus.Registerer, prefix, tool string) (*Rules, error) {
	var m Rules
	var errs [3]error
	m.Resyncs, errs[0] = Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: prefix + "_resyncs_total",
		Help: "Checks of the " + tool + " rules.",
	}))
	m.Repairs, errs[1] = Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: prefix + "_repairs_total",
		Help: "Checks that found a chain's rules not in place and rewrote them.",
	}, []string{"table", "chain"}))
	m.Errors, errs[2] = Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: prefix + "_errors_total",
		Help: "Checks of the " + tool + " rules that failed.",
	}))
	return &m, errors.Join(errs[:]...)
}

// PeerFilter are the metrics of the VXLAN peer filter. SetChanges counts
// the changes of the peer set, which each mode makes its own way (ipset
// swaps, nftables element updates) and names accordingly.
type PeerFilter struct {
	Peers      prometheus.Gauge
	SetChanges prometheus.Counter
	Repairs    prometheus.Counter
	Errors     prometheus.Counter
}

// NewPeerFilter registers the peer filter metrics (IPv4, or the only
// family of the nftables mode) with reg (nil: not exported), SetChanges
// as overlayd_vxlan_peer_filter_<setChanges>.
func NewPeerFilter(reg prometheus.Registerer, setChanges prometheus.CounterOpts) (*PeerFilter, error) {
	return newPeerFilter(reg, peerFilterIPv4, "", setChanges)
}

// NewPeerFilterIPv6 registers the metrics of the IPv6 device's peer
// filter with reg (nil: not exported), SetChanges as
// overlayd_vxlan_v6_peer_filter_<setChanges>.
func NewPeerFilterIPv6(reg prometheus.Registerer, setChanges prometheus.CounterOpts) (*PeerFilter, error) {
	return newPeerFilter(reg, peerFilterIPv6, " (IPv6 device)", setChanges)
}

// newPeerFilter names every metric prefix_<suffix>; setChanges.Name is
// the suffix of the set change counter; note ends every help text.
func newPeerFilter(reg prometheus.Registerer, prefix, note string, setChanges prometheus.CounterOpts) (*PeerFilter, error) {
	var m PeerFilter
	var errs [4]error
	m.Peers, errs[0] = Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: prefix + "_peers", Help: "Addresses allowed to send VXLAN packets" + note + ".",
	}))
	setChanges.Name = prefix + "_" + setChanges.Name
	setChanges.Help = strings.TrimSuffix(setChanges.Help, ".") + note + "."
	m.SetChanges, errs[1] = Register(reg, prometheus.NewCounter(setChanges))
	m.Repairs, errs[2] = Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: prefix + "_repairs_total", Help: "Rewrites of the peer filter chain or its jump" + note + ".",
	}))
	m.Errors, errs[3] = Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: prefix + "_errors_total", Help: "Peer filter updates or checks that failed" + note + ".",
	}))
	return &m, errors.Join(errs[:]...)
}
