package csumtrigger

import (
	"net/netip"
	"strings"
	"testing"
)

func TestRulesMarkThenMasqueradeWithoutUnmark(t *testing.T) {
	svc := Service{}
	svc.VIP = mustAddrPort("10.96.0.10:80")
	svc.Backend = mustAddrPort("10.244.1.2:8080")
	r := Rules(svc)
	for _, want := range []string{
		"-A KUBE-POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE --random-fully",
		"-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ",
		"-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m udp --dport 80 -j DNAT --to-destination 10.244.1.2:8080",
	} {
		if !strings.Contains(r, want) {
			t.Errorf("rules lack %q:\n%s", want, r)
		}
	}
	// The fix of Kubernetes 1.19 (clear the mark before masquerading) must
	// not be there: it would hide the trigger.
	if strings.Contains(r, "--xor-mark") || strings.Contains(r, "RETURN") {
		t.Errorf("rules carry kube-proxy 1.19's unmark:\n%s", r)
	}
}

func TestCountOuterChecksums(t *testing.T) {
	text := `tcpdump: listening on ul0, link-type EN10MB (Ethernet), snapshot length 262144 bytes
12:00:00.000001 IP (tos 0x0, ttl 64, id 1, offset 0, flags [none], proto UDP (17), length 110)
    192.0.2.11.41234 > 192.0.2.12.8472: [no cksum] OTV, flags [I] (0x08), overlay 0, instance 1
IP (tos 0x0, ttl 64, id 2, offset 0, flags [DF], proto UDP (17), length 60)
    10.244.0.0.5555 > 10.244.1.2.8080: [udp sum ok] UDP, length 32
12:00:00.000002 IP (tos 0x0, ttl 64, id 3, offset 0, flags [none], proto UDP (17), length 110)
    192.0.2.11.41234 > 192.0.2.12.8472: [bad udp cksum 0x1234 -> 0x5678!] OTV, flags [I] (0x08)
12:00:00.000003 IP (tos 0x0, ttl 64, id 4, offset 0, flags [none], proto UDP (17), length 110)
    192.0.2.11.41234 > 192.0.2.12.8472: [udp sum ok] OTV, flags [I] (0x08)
`
	got := CountOuterChecksums(text, 8472)
	want := OuterChecksums{Packets: 3, NoSum: 1, SumOK: 1, BadSum: 1}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseSNMP(t *testing.T) {
	text := `Ip: Forwarding DefaultTTL
Ip: 1 64
Tcp: RtoAlgorithm MaxConn RetransSegs InCsumErrors
Tcp: 1 -1 7 2
Udp: InDatagrams InErrors InCsumErrors
Udp: 100 3 3
`
	m, err := ParseSNMP(text)
	if err != nil {
		t.Fatal(err)
	}
	if m["Tcp"]["RetransSegs"] != 7 || m["Tcp"]["InCsumErrors"] != 2 || m["Udp"]["InCsumErrors"] != 3 {
		t.Errorf("parsed %v", m)
	}
	if _, err := ParseSNMP("Tcp: A B\nUdp: 1 2\n"); err == nil {
		t.Error("mismatched lines: want an error")
	}
}

func FuzzParseSNMP(f *testing.F) {
	f.Add("Tcp: A B\nTcp: 1 2\n")
	f.Add("Udp: InCsumErrors\nUdp: -5\n")
	f.Fuzz(func(t *testing.T, s string) { ParseSNMP(s) })
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
