//go:build memprobe

package backend

// A measurement, not a test (go test -tags memprobe -run TestMemProbe -v
// ./backend/): the live heap of a peer set and a reconciler over the fake
// kernel holding MEMPROBE_N peers (default 10,000) in sync, onlink; with
// MEMPROBE_OUT=FILE an exact heap profile (MemProfileRate 1), whose
// allocation sites tell the peer set, the reconciler's desired and
// believed state and the fake kernel apart (docs/performance.md).

import (
	"fmt"
	"github.com/overlayd/overlayd/peerset"
	"github.com/overlayd/overlayd/subnet"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
)

func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestMemProbe(t *testing.T) {
	runtime.MemProfileRate = 1
	n, _ := strconv.Atoi(os.Getenv("MEMPROBE_N"))
	if n == 0 {
		n = 10000
	}
	leases := probeLeases(n)
	f := newFixture(t, bigNetwork)
	set, err := peerset.New(peerset.Options{Network: f.r.opts.Network, OwnSubnet: f.r.opts.OwnSubnet, SubnetLen: 25, Peers: f.r, Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	f.set = set
	before := heapNow()
	f.replace(leases)
	f.r.step(t.Context())
	st := f.r.Status()
	if !st.InSync || st.Counts.PeersProgrammed != n {
		t.Fatalf("not in sync: %+v", st.Counts)
	}
	st = Status{}
	after := heapNow()
	t.Logf("N=%d heap delta %.1f MiB, %.0f B/peer (incl fake kernel)", n, float64(after-before)/(1<<20), float64(after-before)/float64(n))
	if p := os.Getenv("MEMPROBE_OUT"); p != "" {
		fh, _ := os.Create(p)
		pprof.WriteHeapProfile(fh)
		fh.Close()
	}
	runtime.KeepAlive(f)
	runtime.KeepAlive(leases)
}

func probeLeases(n int) []subnet.Lease {
	out := make([]subnet.Lease, 0, n)
	for i := range n {
		v := uint32(10)<<24 | uint32(i+1)<<7
		sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 25)
		ip := netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})
		mac := fmt.Sprintf("0e:00:00:%02x:%02x:%02x", byte(i>>16), byte(i>>8), byte(i))
		out = append(out, lease(sub.String(), ip.String(), mac))
	}
	return out
}
