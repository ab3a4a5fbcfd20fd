package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/icmpwire"
)

func TestEchoRequestChecksum(t *testing.T) {
	msg := icmpwire.EchoRequest(0x1234, 1, []byte("overlayd-lab"))
	if msg[0] != icmpEchoRequest || binary.BigEndian.Uint16(msg[4:]) != 0x1234 || binary.BigEndian.Uint16(msg[6:]) != 1 {
		t.Fatalf("header = % x", msg[:8])
	}
	// A message with a correct checksum sums to zero.
	if sum := icmpwire.Checksum(msg); sum != 0 {
		t.Fatalf("checksum over the message = %#04x, want 0", sum)
	}
	odd := icmpwire.EchoRequest(7, 9, []byte("odd"))
	if sum := icmpwire.Checksum(odd); sum != 0 {
		t.Fatalf("odd-length checksum = %#04x, want 0", sum)
	}
}

func TestEchoVerdict(t *testing.T) {
	const id, seq = 0xbeef, 1
	reply := icmpwire.EchoRequest(id, seq, nil)
	reply[0] = icmpEchoReply
	otherReply := icmpwire.EchoRequest(id+1, seq, nil)
	otherReply[0] = icmpEchoReply
	quotedIP := make([]byte, 20)
	quotedIP[0], quotedIP[9] = 0x45, 1
	unreachable := append([]byte{icmpDestUnreachable, 1, 0, 0, 0, 0, 0, 0}, append(quotedIP, icmpwire.EchoRequest(id, seq, nil)...)...)
	unrelated := append([]byte{icmpDestUnreachable, 1, 0, 0, 0, 0, 0, 0}, append(quotedIP, icmpwire.EchoRequest(id+1, seq, nil)...)...)
	tests := []struct {
		name    string
		msg     []byte
		wantOK  bool
		wantErr string
	}{
		{name: "our reply", msg: reply, wantOK: true},
		{name: "someone else's reply", msg: otherReply},
		{name: "a request", msg: icmpwire.EchoRequest(id, seq, nil)},
		{name: "unreachable about us", msg: unreachable, wantErr: "destination unreachable (code 1)"},
		{name: "unreachable about another", msg: unrelated},
		{name: "runt", msg: []byte{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := echoVerdict(tt.msg, id, seq)
			if ok != tt.wantOK || (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("echoVerdict = %t, %v; want %t, %q", ok, err, tt.wantOK, tt.wantErr)
			}
		})
	}
}

func TestPingMatrixReport(t *testing.T) {
	a := &Pod{Name: "node0/pod0", IP: netip.MustParseAddr("10.244.1.2")}
	b := &Pod{Name: "node1/pod0", IP: netip.MustParseAddr("10.244.2.2")}
	m := newPingMatrix([]*Pod{a, b}, false)
	if len(m.Results) != 2 {
		t.Fatalf("results = %d, want 2", len(m.Results))
	}
	m.Results[1].Err = errors.New("ping 10.244.1.2: no reply within 1s")
	want := `from \ to   node0/pod0  node1/pod0
node0/pod0  -           ok
node1/pod0  FAIL        -
`
	if got := m.String(); got != want {
		t.Errorf("String:\n%q\nwant:\n%q", got, want)
	}
	err := m.Err()
	if err == nil || !strings.Contains(err.Error(), "1 of 2 pings failed") || !strings.Contains(err.Error(), fmt.Sprintf("%s -> %s", b, a)) {
		t.Errorf("Err = %v", err)
	}
	if got := failedIndexes(m.Results); len(got) != 1 || got[0] != 1 {
		t.Errorf("failedIndexes = %v", got)
	}
}
