package main

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"

	"github.com/overlayd/overlayd/bench/internal/benchrun"
	"github.com/overlayd/overlayd/iptables"
	"github.com/overlayd/overlayd/nftrules"
)

var (
	network  = netip.MustParsePrefix("10.244.0.0/16")
	pod      = netip.MustParsePrefix("10.244.3.0/24")
	network6 = netip.MustParsePrefix("2001:db8:1000::/48")
	pod6     = netip.MustParsePrefix("2001:db8:1000:3::/64")
)

// path is one implementation under test.
type path struct {
	name        string
	ipv6        bool         // IPv6 rules and peers (ip6tables)
	clean       func() error // remove everything (not timed)
	applyRules  func() error // build a fresh manager and Ensure
	checkRules  func() error // Ensure with everything in place
	setPeers    func([]netip.Addr) error
	checkFilter func() error
}

// result is one row: the step and each path's median (min–max).
type result struct {
	step  string
	times map[string][]time.Duration
}

func inner(c config, out io.Writer) error {
	paths, err := newPaths()
	if err != nil {
		return err
	}
	var rows []result
	add := func(step string, p path, d []time.Duration) {
		for i := range rows {
			if rows[i].step == step {
				rows[i].times[p.name] = d
				return
			}
		}
		rows = append(rows, result{step: step, times: map[string][]time.Duration{p.name: d}})
	}
	for _, p := range paths {
		peers := peerAddrs(c.peers+1, p.ipv6)
		base, extra := peers[:c.peers], peers
		if err := p.clean(); err != nil {
			return fmt.Errorf("%s: clean: %w", p.name, err)
		}
		d, err := times(c.reps, p.clean, p.applyRules)
		if err != nil {
			return fmt.Errorf("%s: apply rules: %w", p.name, err)
		}
		add("apply masquerade + forward rules (clean node)", p, d)
		if d, err = times(c.reps, nil, p.checkRules); err != nil {
			return fmt.Errorf("%s: check rules: %w", p.name, err)
		}
		add("check rules in place (one resync tick)", p, d)
		if d, err = times(1, nil, func() error { return p.setPeers(base) }); err != nil {
			return fmt.Errorf("%s: install filter: %w", p.name, err)
		}
		add(fmt.Sprintf("install peer filter with %d peers", c.peers), p, d)
		var adds, dels []time.Duration
		for range c.reps {
			d, err := timeOne(func() error { return p.setPeers(extra) })
			if err != nil {
				return fmt.Errorf("%s: add a peer: %w", p.name, err)
			}
			adds = append(adds, d)
			if d, err = timeOne(func() error { return p.setPeers(base) }); err != nil {
				return fmt.Errorf("%s: remove a peer: %w", p.name, err)
			}
			dels = append(dels, d)
		}
		add(fmt.Sprintf("add one peer (%d → %d)", c.peers, c.peers+1), p, adds)
		add(fmt.Sprintf("remove one peer (%d → %d)", c.peers+1, c.peers), p, dels)
		if d, err = times(c.reps, nil, p.checkFilter); err != nil {
			return fmt.Errorf("%s: check filter: %w", p.name, err)
		}
		add(fmt.Sprintf("check peer filter in place (%d peers)", c.peers), p, d)
		if err := p.clean(); err != nil {
			return fmt.Errorf("%s: clean: %w", p.name, err)
		}
	}
	report(out, c, paths, rows)
	return nil
}

// times runs before (untimed) and step reps times and returns step's times.
func times(reps int, before, step func() error) ([]time.Duration, error) {
	var out []time.Duration
	for range reps {
		if before != nil {
			if err := before(); err != nil {
				return nil, err
			}
		}
		d, err := timeOne(step)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func timeOne(step func() error) (time.Duration, error) {
	start := time.Now()
	err := step()
	return time.Since(start), err
}

// peerAddrs returns n distinct addresses from 198.51.0.1 upwards, or
// from 2001:db8:ff::1 for IPv6 (they only ever sit in a set).
func peerAddrs(n int, ipv6 bool) []netip.Addr {
	out := make([]netip.Addr, n)
	a := netip.MustParseAddr("198.51.0.1")
	if ipv6 {
		a = netip.MustParseAddr("2001:db8:ff::1")
	}
	for i := range out {
		out[i] = a
		a = a.Next()
	}
	return out
}

func report(out io.Writer, c config, paths []path, rows []result) {
	fmt.Fprintf(out, "rulebench: %d peers, %d repetitions; median (min–max); load average %.2f\n\n", c.peers, c.reps, benchrun.LoadAverage())
	fmt.Fprintf(out, "| step |")
	for _, p := range paths {
		fmt.Fprintf(out, " %s |", p.name)
	}
	fmt.Fprintf(out, "\n|---|")
	for range paths {
		fmt.Fprintf(out, "---|")
	}
	fmt.Fprintln(out)
	for _, r := range rows {
		fmt.Fprintf(out, "| %s |", r.step)
		for _, p := range paths {
			fmt.Fprintf(out, " %s |", summary(r.times[p.name]))
		}
		fmt.Fprintln(out)
	}
}

func summary(d []time.Duration) string {
	if len(d) == 0 {
		return "–"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 1 {
		return round(s[0])
	}
	return fmt.Sprintf("%s (%s–%s)", round(s[len(s)/2]), round(s[0]), round(s[len(s)-1]))
}

func round(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

// newPaths builds both implementations in the current namespace.
func newPaths() ([]path, error) {
	ipt, err := iptablesPath(false)
	if err != nil {
		return nil, err
	}
	nft, err := nftablesPath()
	if err != nil {
		return nil, err
	}
	ipt6, err := iptablesPath(true)
	if err != nil {
		return nil, err
	}
	return []path{ipt, nft, ipt6}, nil
}

// iptablesPath is the iptables mode of one family: iptables and an inet
// set, or ip6tables and an inet6 set.
func iptablesPath(ipv6 bool) (path, error) {
	runner, err := iptables.NewRunner(ipv6)
	if err != nil {
		return path{}, err
	}
	ipset := iptables.NewIPSetRunner()
	opts := iptables.Options{Runner: runner, Network: network, PodSubnet: pod, Masquerade: true, ForwardRules: true}
	name := "iptables + ipset"
	if ipv6 {
		opts.Network, opts.PodSubnet, name = network6, pod6, "ip6tables + ipset (IPv6)"
	}
	m, err := iptables.NewManager(opts)
	if err != nil {
		return path{}, err
	}
	f, err := iptables.NewPeerFilter(iptables.PeerFilterOptions{Runner: runner, IPSet: ipset})
	if err != nil {
		return path{}, err
	}
	return path{
		name:        name,
		ipv6:        ipv6,
		clean:       func() error { return iptables.RemoveAll(runner, ipset) },
		applyRules:  applyFresh(func() (*iptables.Manager, error) { return iptables.NewManager(opts) }),
		checkRules:  m.Ensure,
		setPeers:    f.SetPeers,
		checkFilter: f.Ensure,
	}, nil
}

func nftablesPath() (path, error) {
	k, err := nftrules.NewNetlinkKernel(0)
	if err != nil {
		return path{}, err
	}
	opts := nftrules.Options{Kernel: k, Network: network, PodSubnet: pod, Masquerade: true, ForwardRules: true}
	m, err := nftrules.NewManager(opts)
	if err != nil {
		return path{}, err
	}
	f, err := nftrules.NewPeerFilter(nftrules.PeerFilterOptions{Kernel: k})
	if err != nil {
		return path{}, err
	}
	return path{
		name:        "nftables (netlink)",
		clean:       func() error { _, err := nftrules.RemoveAll(k); return err },
		applyRules:  applyFresh(func() (*nftrules.Manager, error) { return nftrules.NewManager(opts) }),
		checkRules:  m.Ensure,
		setPeers:    f.SetPeers,
		checkFilter: f.Ensure,
	}, nil
}

// applyFresh applies the rules from scratch: a new manager from
// newManager and its first check.
func applyFresh[M interface{ Ensure() error }](newManager func() (M, error)) func() error {
	return func() error {
		m, err := newManager()
		if err != nil {
			return err
		}
		return m.Ensure()
	}
}
