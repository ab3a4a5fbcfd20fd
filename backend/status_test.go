package backend

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/overlayd/overlayd/backend/backendtest"
	"github.com/overlayd/overlayd/subnet"
)

// TestStatusRowsAreThePeers: the /status peer rows are the reconciler's
// own peers (no second copy to fall behind): after every step they show
// each peer's lease fields, destination and programmed state as the
// reconciler holds them, through additions, a changed VTEP MAC, a failing
// write and its repair, and a removal.
func TestStatusRowsAreThePeers(t *testing.T) {
	a := lease("10.244.1.0/24", "192.0.2.11", "0e:00:00:00:00:01")
	b := lease("10.244.2.0/24", "192.0.2.12", "0e:00:00:00:00:02")
	b2 := lease("10.244.2.0/24", "192.0.2.22", "0e:00:00:00:00:22")
	f := newFixture(t)
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"snapshot", func() { f.replace([]subnet.Lease{a, b}) }, []string{
			"10.244.1.0/24 192.0.2.11 0e:00:00:00:00:01 dst 192.0.2.11 programmed",
			"10.244.2.0/24 192.0.2.12 0e:00:00:00:00:02 dst 192.0.2.12 programmed",
		}},
		{"new MAC, its FDB write fails", func() {
			f.k.Fail(backendtest.OpFDBSet, "0e:00:00:00:00:22", 1, errNoBufs)
			f.update([]subnet.Event{added(b2)})
		}, []string{
			"10.244.1.0/24 192.0.2.11 0e:00:00:00:00:01 dst 192.0.2.11 programmed",
			"10.244.2.0/24 192.0.2.22 0e:00:00:00:00:22 dst 192.0.2.22 pending: replace fdb 0e:00:00:00:00:22 dst 192.0.2.22 dev flannel.1: no buffer space available",
		}},
		{"retried", func() { f.clock.Advance(fullDue(f.r.opts)) }, []string{
			"10.244.1.0/24 192.0.2.11 0e:00:00:00:00:01 dst 192.0.2.11 programmed",
			"10.244.2.0/24 192.0.2.22 0e:00:00:00:00:22 dst 192.0.2.22 programmed",
		}},
		{"removed", func() { f.update([]subnet.Event{removed(a)}) }, []string{
			"10.244.2.0/24 192.0.2.22 0e:00:00:00:00:22 dst 192.0.2.22 programmed",
		}},
	}
	for _, s := range steps {
		s.do()
		f.step()
		got := statusRows(f.r.Status())
		if fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Errorf("%s: rows\n%q\nwant\n%q", s.name, got, s.want)
		}
		if own := ownRows(f.r); fmt.Sprint(got) != fmt.Sprint(own) {
			t.Errorf("%s: rows\n%q\nbut the reconciler's peers are\n%q", s.name, got, own)
		}
	}
}

// statusRows renders Status's peer rows, one line each.
func statusRows(s Status) []string {
	var out []string
	for _, p := range s.Peers {
		out = append(out, row(p.Subnet, p.PublicIP, p.MAC.String(), p.Dst, p.Programmed, p.Error))
	}
	return out
}

// ownRows renders the reconciler's peers the same way, sorted by subnet
// (read on the test goroutine, which steps the reconciler).
func ownRows(r *Reconciler) []string {
	var subnets []netip.Prefix
	for s := range r.want.peers {
		subnets = append(subnets, s)
	}
	var out []string
	for _, s := range sortedPrefixes(subnets) {
		p := r.want.peers[s]
		errText := ""
		if p.err != nil {
			errText = p.err.Error()
		}
		out = append(out, row(p.subnet, p.publicIP, macString(p.mac), p.dst, p.programmed(), errText))
	}
	return out
}

func row(sub netip.Prefix, pub netip.Addr, mac string, dst netip.Addr, programmed bool, errText string) string {
	state := "programmed"
	if !programmed {
		state = "pending: " + errText
	}
	return fmt.Sprintf("%s %s %s dst %s %s", sub, pub, mac, dst, state)
}

func sortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].Addr().Less(ps[j-1].Addr()); j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
	return ps
}

// TestStatusWhileRunning reads Status from other goroutines while the
// loop applies events and writes (run with -race: the rows are read from
// the loop's peers, under the lock the loop takes to change them).
func TestStatusWhileRunning(t *testing.T) {
	f := newFixture(t, bigNetwork)
	f.run()
	leases := manyLeases(300)
	f.replace(leases[:100])
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := f.r.Status()
				for _, p := range s.Peers {
					if !p.Subnet.IsValid() || len(p.MAC) != 6 {
						t.Errorf("bad row %+v", p)
						return
					}
				}
			}
		}()
	}
	for i := 100; i < len(leases); i++ {
		f.update([]subnet.Event{added(leases[i])})
		if i%3 == 0 {
			f.update([]subnet.Event{removed(leases[i-50])})
		}
	}
	want := len(leases) - len(leases[100:])/3
	f.waitFor(fmt.Sprintf("%d peers programmed", want), func() bool {
		s := f.r.Status()
		programmed := 0
		for _, p := range s.Peers {
			if p.Programmed {
				programmed++
			}
		}
		return s.InSync && len(s.Peers) == want && programmed == want && s.Counts.PeersProgrammed == want
	})
	close(stop)
	wg.Wait()
}

// TestPeerDstsAreThePeers: the health prober's targets come from the
// reconciler's peers: every peer once, with its underlay destination.
func TestPeerDstsAreThePeers(t *testing.T) {
	f := newFixture(t)
	f.replace([]subnet.Lease{lease("10.244.1.0/24", "192.0.2.11", "0e:00:00:00:00:01"), lease("10.244.2.0/24", "192.0.2.12", "0e:00:00:00:00:02")})
	f.step()
	f.update([]subnet.Event{added(lease("10.244.2.0/24", "192.0.2.22", "0e:00:00:00:00:02")), added(lease("10.244.3.0/24", "192.0.2.13", "0e:00:00:00:00:03"))})
	f.step()
	got := map[string]string{}
	f.r.PeerDsts(func(sub netip.Prefix, dst netip.Addr) {
		if _, dup := got[sub.String()]; dup {
			t.Errorf("%s listed twice", sub)
		}
		got[sub.String()] = dst.String()
	})
	want := map[string]string{"10.244.1.0/24": "192.0.2.11", "10.244.2.0/24": "192.0.2.22", "10.244.3.0/24": "192.0.2.13"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("PeerDsts %v, want %v", got, want)
	}
}

// TestPeerDstsWaitForTheSnapshot: early peers of a first list still being
// read are programmed but are not health targets until the snapshot.
func TestPeerDstsWaitForTheSnapshot(t *testing.T) {
	f := newFixture(t)
	count := func() int {
		n := 0
		f.r.PeerDsts(func(netip.Prefix, netip.Addr) { n++ })
		return n
	}
	f.early([]subnet.Lease{observedPeer})
	f.step()
	if n := count(); n != 0 {
		t.Errorf("%d targets before the snapshot, want 0", n)
	}
	f.replace([]subnet.Lease{observedPeer})
	f.step()
	if n := count(); n != 1 {
		t.Errorf("%d targets after the snapshot, want 1", n)
	}
}
