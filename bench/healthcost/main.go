// Command healthcost measures what overlayd's peer health probes cost a
// node at a given cluster size: CPU seconds per minute, packets per
// second and RSS added, with the daemon's defaults (a 10s interval, 32
// peers per round). It runs the real prober and responder (package
// health) in a scratch network namespace where every target address is
// local (a `local` route on lo), so the kernel answers each overlay ICMP
// echo and the responder each underlay probe, as the peers would: the
// node both sends its probes and answers as many, as in a cluster.
//
//	go run ./bench/healthcost -peers 1000
//	go run ./bench/healthcost -peers 10000
//
// Root only; the namespace is removed at exit.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/health"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

func main() {
	peers := flag.Int("peers", 1000, "fake peers")
	duration := flag.Duration("duration", 60*time.Second, "measurement time")
	interval := flag.Duration("interval", 10*time.Second, "--health-interval")
	sample := flag.Int("sample", 32, "--health-sample")
	steady := flag.Bool("steady", false, "probe every peer once first (not measured), then measure: no peer is new")
	flag.Parse()
	if err := run(*peers, *duration, *interval, *sample, *steady); err != nil {
		fmt.Fprintln(os.Stderr, "healthcost:", err)
		os.Exit(1)
	}
}

type sockets struct {
	responder *net.UDPConn
	udp       *net.UDPConn
	icmp      net.PacketConn
}

func run(peers int, duration, interval time.Duration, sample int, steady bool) error {
	if peers < 1 || peers > 65536 {
		return fmt.Errorf("-peers %d: want 1..65536", peers)
	}
	ns := netnsutil.UniqueName("hcost")
	if err := netnsutil.Create(ns); err != nil {
		return err
	}
	defer netnsutil.Delete(ns)
	for _, args := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "route", "add", "local", "10.0.0.0/8", "dev", "lo"},
		{"ip", "route", "add", "local", "198.18.0.0/15", "dev", "lo"},
	} {
		if out, err := netnsutil.Exec(context.Background(), ns, args...); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	var s sockets
	err := netnsutil.Do(ns, func() error {
		var err error
		if s.responder, err = health.Listen(netip.AddrPortFrom(netip.IPv4Unspecified(), health.DefaultPort)); err != nil {
			return err
		}
		if s.udp, err = health.ListenProber(); err != nil {
			return err
		}
		s.icmp, err = health.ListenICMP()
		return err
	})
	if err != nil {
		return err
	}
	return measure(s, targets(peers), duration, interval, sample, steady)
}

// targets are peers 10.x.y.0/24 (overlay 10.x.y.0) at 198.18.x.y.
func targets(n int) func() []health.Target {
	return func() []health.Target {
		out := make([]health.Target, n) // rebuilt every round, as the daemon does from the reconciler's status
		for i := range out {
			hi, lo := byte(i>>8), byte(i)
			out[i] = health.Target{
				Subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, hi, lo, 0}), 24),
				Overlay:  netip.AddrFrom4([4]byte{10, hi, lo, 0}),
				Underlay: netip.AddrFrom4([4]byte{198, 18 + hi>>7, hi & 0x7f, lo}),
			}
		}
		return out
	}
}

func measure(s sockets, tg func() []health.Target, duration, interval time.Duration, sample int, steady bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// One responder stands for every peer's: no per-node answer limit.
	limit := health.NewLimiter(1e9, 1e9, time.Now)
	resp := health.NewResponder(s.responder, limit, nil)
	go resp.Run(ctx)
	time.Sleep(time.Second)
	runtime.GC()
	rss0, heap0 := rssKiB(), heapInuse()
	reg := prometheus.NewRegistry()
	n := len(tg())
	burst := 0 // the daemon's default, 4*sample
	warmupRounds := 0
	if steady {
		burst = 1000 // every peer probed once in the first rounds, not measured
		warmupRounds = (n+burst-1)/burst + 1
	}
	targets := func(into []health.Target) []health.Target { return append(into, tg()...) }
	p, err := health.NewProber(health.ProberOptions{Targets: targets, Port: health.DefaultPort, Interval: interval, Sample: sample, Burst: burst,
		Conn: s.udp, ICMP: s.icmp, Registerer: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	go p.Run(ctx)
	phase := "start: every peer new (first rounds)"
	if steady {
		time.Sleep(time.Duration(warmupRounds)*interval + interval/2) // every peer probed once
		phase = "steady: no peer new or changed"
	}
	cpu0, sent0, answered0 := cpuSeconds(), counter(reg, "overlayd_peer_probe_packets_sent_total"), resp.Stats().Answered
	ok0, lost0 := probes(reg)
	start := time.Now()
	time.Sleep(duration)
	elapsed := time.Since(start)
	cpu1, rss1 := cpuSeconds(), rssKiB()
	runtime.GC()
	heap1 := heapInuse()
	sent := counter(reg, "overlayd_peer_probe_packets_sent_total") - sent0
	ok, lost := probes(reg)
	answered := resp.Stats().Answered - answered0
	fmt.Printf("| peers | phase | interval | sample | CPU s/min | probe packets/s sent | underlay answers/s | probes ok / lost | RSS added (MiB) | Go heap added (MiB) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %s | %s | %d | %.3f | %.1f | %.1f | %d / %d | %.1f | %.1f |\n", n, phase, interval, sample,
		(cpu1-cpu0)/elapsed.Minutes(), sent/elapsed.Seconds(), float64(answered)/elapsed.Seconds(), int(ok-ok0), int(lost-lost0),
		float64(rss1-rss0)/1024, float64(heap1-heap0)/(1<<20))
	fmt.Printf("\n(%s measured; %d peers known; Go %s, %d CPUs)\n", elapsed.Round(time.Second), len(p.Peers()), runtime.Version(), runtime.NumCPU())
	return nil
}

func heapInuse() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func rssKiB() int {
	data, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	return 0
}

func counter(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

func probes(reg *prometheus.Registry) (ok, lost float64) {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "overlayd_peer_probes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "ok" {
					ok += m.GetCounter().GetValue()
				} else if l.GetName() == "result" {
					lost += m.GetCounter().GetValue()
				}
			}
		}
	}
	return ok, lost
}
