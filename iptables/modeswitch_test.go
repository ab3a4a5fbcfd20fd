package iptables

import (
	"net/netip"
	"strings"
	"testing"

	goipt "github.com/coreos/go-iptables/iptables"
)

// TestRemoveAllLeavesNothingOfTheMode: after the chains, jumps and set of
// every part are installed (next to a rule that is not ours), RemoveAll
// leaves only the built-in chains and the foreign rule; a second call finds
// nothing to do.
func TestRemoveAllLeavesNothingOfTheMode(t *testing.T) {
	f := newFakeRunner(goipt.ProtocolIPv4)
	f.tables[rawTable] = append(f.tables[rawTable], &fakeChain{name: outputChain, builtin: true})
	s := newFakeIPSet(f)
	ensure(t, newTestManager(t, testOptions(f)))
	// The fake has no CT target: the notrack chain and its jump by hand.
	if err := f.NewChain(rawTable, NoTrackChain); err != nil {
		t.Fatal(err)
	}
	if err := f.Append(rawTable, NoTrackChain, "-j", "RETURN"); err != nil {
		t.Fatal(err)
	}
	if err := f.Append(rawTable, outputChain, noTrackJump().Spec...); err != nil {
		t.Fatal(err)
	}
	pf, err := NewPeerFilter(PeerFilterOptions{Runner: f, IPSet: s})
	if err != nil {
		t.Fatal(err)
	}
	if err := pf.SetPeers([]netip.Addr{netip.MustParseAddr("192.0.2.2")}); err != nil {
		t.Fatal(err)
	}
	foreign := []string{"-s", "203.0.113.0/24", "-j", "ACCEPT"}
	if err := f.Append(filterTable, forwardChain, foreign...); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := RemoveAll(f, s); err != nil {
			t.Fatal(err)
		}
		all := f.save(natTable) + f.save(filterTable) + f.save(rawTable)
		for _, name := range []string{MasqChain, ForwardChain, PeerChain, NoTrackChain} {
			if strings.Contains(all, name) {
				t.Errorf("%s left:\n%s", name, all)
			}
		}
		if !strings.Contains(all, "203.0.113.0/24") {
			t.Errorf("the foreign rule was removed:\n%s", all)
		}
		if names, _ := s.ListNames(); len(names) != 0 {
			t.Errorf("sets left: %v", names)
		}
	}
}
