package iptables

import (
	"errors"
	"testing"

	goipt "github.com/coreos/go-iptables/iptables"
)

// TestPeerFilterInstallFailsClosed: Install puts the chain and the jump
// in place before any peer is known, with an empty set on a first start
// (VXLAN dropped until SetPeers) or the members an earlier run left (a
// restart cuts nobody); an ipset failure is an error and installs
// nothing, and a later SetPeers works as usual.
func TestPeerFilterInstallFailsClosed(t *testing.T) {
	tests := []struct {
		name    string
		left    []string // members of a set left by an earlier run (nil: none)
		fail    error
		want    []string
		wantErr bool
	}{
		{name: "first start", want: []string{}},
		{name: "restart keeps members", left: []string{"192.0.2.2", "192.0.2.3"}, want: []string{"192.0.2.2", "192.0.2.3"}},
		{name: "ipset fails", fail: errors.New("exec: \"ipset\": executable file not found in $PATH"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRunner(goipt.ProtocolIPv4)
			s := newFakeIPSet(f)
			if tt.left != nil {
				must(t, s.Restore("create "+PeerSetName+" hash:ip family inet\n"))
				for _, m := range tt.left {
					must(t, s.Restore("add "+PeerSetName+" "+m+"\n"))
				}
			}
			s.fail = tt.fail
			pf := newTestPeerFilter(t, f, s, 0)
			err := pf.Install()
			if tt.wantErr {
				if !errors.Is(err, tt.fail) {
					t.Fatalf("Install = %v, want the ipset failure", err)
				}
				if got := f.save("filter"); got != emptyFilterTable {
					t.Fatalf("rules installed although the set failed:\n%s", got)
				}
				return
			}
			must(t, err)
			if got := f.save("filter"); got != peerFilterTable {
				t.Fatalf("iptables -S\n got:\n%s\nwant:\n%s", got, peerFilterTable)
			}
			got := members(t, s, PeerSetName)
			if got == nil {
				got = []string{}
			}
			assertLines(t, got, tt.want)
			must(t, pf.SetPeers(addrs("192.0.2.9")))
			assertLines(t, members(t, s, PeerSetName), []string{"192.0.2.9"})
		})
	}
}
