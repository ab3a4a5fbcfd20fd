//go:build memprobe

package health

// A measurement, not a test (go test -tags memprobe -run TestMemProbeProber
// -v ./health/): the prober's live state per peer at 100,000 targets.

import (
	"net/netip"
	"runtime"
	"testing"
)

func TestMemProbeProber(t *testing.T) {
	const n = 100000
	targets := make([]Target, n)
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 9), byte(i >> 1), byte(i&1) << 7})
		targets[i] = Target{Subnet: netip.PrefixFrom(a, 25), Overlay: a, Underlay: netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})}
	}
	p := newTestProber(t, newEchoNet(), func() []Target { return nil }, 32, nil)
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	before := m.HeapAlloc
	p.pick(targets)
	runtime.GC()
	runtime.ReadMemStats(&m)
	t.Logf("prober state: %.0f bytes per peer", float64(m.HeapAlloc-before)/n)
	runtime.KeepAlive(targets)
	runtime.KeepAlive(p)
}
