package hostile

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// The same-site wire format as a stranger writes it (samesite/message.go,
// samesite/sign.go): an answer is the probe with kind 2 and the identity
// filled in; from version 2 on, the probed address and a signature follow.
const (
	ssPort       = 8475
	ssV1Len      = 33
	ssV2Len      = 101
	ssSignDomain = "overlayd same-site answer v2\x00"
)

// ssIdentity is what a stranger claims: a remote peer's subnet and MAC.
type ssIdentity struct {
	subnet netip.Prefix
	mac    net.HardwareAddr
}

// ssAnswer turns probe into an answer claiming id at probed, with sig
// (version 2 only; zero: unsigned) and, when nonce is set, that nonce
// instead of the probe's.
func ssAnswer(probe []byte, id ssIdentity, probed netip.Addr, sig []byte, nonce []byte) []byte {
	b := bytes.Clone(probe)
	b[5] = 2
	if nonce != nil {
		copy(b[6:22], nonce)
	}
	a := id.subnet.Addr().As4()
	copy(b[22:26], a[:])
	b[26] = byte(id.subnet.Bits())
	copy(b[27:33], id.mac)
	if len(b) >= ssV2Len {
		p := probed.As4()
		copy(b[33:37], p[:])
		copy(b[37:], sig)
	}
	return b
}

// ssSign signs as the samesite package does: nonce, prober, probed,
// subnet, prefix length, MAC.
func ssSign(key ed25519.PrivateKey, nonce []byte, prober, probed netip.Addr, id ssIdentity) []byte {
	msg := []byte(ssSignDomain)
	msg = append(msg, nonce...)
	p, q, s := prober.As4(), probed.As4(), id.subnet.Addr().As4()
	msg = append(append(append(msg, p[:]...), q[:]...), s[:]...)
	msg = append(append(msg, byte(id.subnet.Bits())), id.mac...)
	return ed25519.Sign(key, msg)
}

// stranger answers every probe reaching it with forged and replayed
// answers claiming victim's identity.
type stranger struct {
	conn    *net.UDPConn
	victim  ssIdentity
	replay  []byte // a genuine answer by the victim, to an earlier probe
	probes  atomic.Int64
	answers atomic.Int64
	wg      sync.WaitGroup
}

// listenIn opens a UDP socket on addr inside namespace ns.
func listenIn(t *testing.T, ns string, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var conn *net.UDPConn
	err := netnsutil.Do(ns, func() error {
		var err error
		conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	return conn
}

func (s *stranger) run(local netip.Addr) {
	defer s.wg.Done()
	buf := make([]byte, 512)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil || (n != ssV1Len && n != ssV2Len) || buf[5] != 1 {
			continue
		}
		s.probes.Add(1)
		probe := bytes.Clone(buf[:n])
		forged := [][]byte{
			ssAnswer(probe, s.victim, local, nil, nil),                         // lease-correct, unsigned
			ssAnswer(probe, s.victim, local, bytes.Repeat([]byte{7}, 64), nil), // a made-up signature
		}
		if n == ssV2Len {
			forged = append(forged, s.replay) // replayed as captured
			// the captured signature under this probe's nonce
			forged = append(forged, ssAnswer(probe, s.victim, local, s.replay[37:], nil))
		}
		for _, a := range forged {
			if _, err := s.conn.WriteToUDPAddrPort(a, from); err == nil {
				s.answers.Add(1)
			}
		}
	}
}

// readNodeKey reads n's same-site key, as the test's stand-in for an
// answer captured on the wire earlier (root can read it; a stranger cannot).
func readNodeKey(t *testing.T, n *lab.Node) ed25519.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(n.SubnetFile), "overlayd-samesite.key"))
	if err != nil {
		t.Fatalf("%s's same-site key: %v", n.Name, err)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("%s's same-site key: %v", n.Name, err)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// fdbDst is n's FDB destination for mac.
func fdbDst(t *testing.T, n *lab.Node, mac string) string {
	t.Helper()
	out, err := netnsutil.Exec(labtest.Context(t, 10*time.Second), n.NS, "bridge", "fdb", "show", "dev", lab.FlannelDevice)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == mac && f[1] == "dst" {
			return f[2]
		}
	}
	return ""
}

// TestStrangerAnsweringSameSiteProbes: node0 and node1 share a VPC; node2
// sits in another VPC with the private address 198.51.100.2, which in
// node1's VPC is node0's. node0's agent stops and a stranger takes its
// place at 198.51.100.2: it answers node1's probes for node2 with node2's
// subnet and VTEP MAC (read from the lease), unsigned, with a made-up
// signature, and with a genuine answer of node2 replayed (its own nonce,
// and its signature under the new nonce). node1 refuses them all and
// counts them (bad_signature, unknown_nonce): node2's VXLAN keeps going
// to its public address and every pod still reaches every other. On
// today's main the unsigned answer verifies node2, and node1 sends node2's
// VXLAN to the stranger.
func TestStrangerAnsweringSameSiteProbes(t *testing.T) {
	c := newCluster(t, lab.Options{Nodes: 3, PodsPerNode: 1, Topology: lab.NAT, SameSite: [][]int{{0, 1}}})
	n0, n1, n2 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	if n0.UnderlayIP != n2.UnderlayIP || n0.UnderlayIP == n1.UnderlayIP {
		t.Fatalf("private addresses %s %s %s: the lab's SameSite layout changed", n0.UnderlayIP, n1.UnderlayIP, n2.UnderlayIP)
	}
	c.startAll()
	c.mustPingAll("at start")
	ctx := labtest.Context(t, 20*time.Second)
	mac2 := labtest.VtepMAC(t, ctx, c.Lab, n2)
	hw2, _ := net.ParseMAC(mac2)
	victim := ssIdentity{subnet: n2.Subnet.Lease(), mac: hw2}
	// A genuine answer of node2, to an earlier probe of node1's.
	oldNonce := bytes.Repeat([]byte{0x5a}, 16)
	oldProbe := append(append([]byte("OVSS\x02\x01"), oldNonce...), make([]byte, ssV2Len-22)...)
	replay := ssAnswer(oldProbe, victim, n2.UnderlayIP, ssSign(readNodeKey(t, n2), oldNonce, n1.UnderlayIP, n2.UnderlayIP, victim), nil)

	if err := c.Agent(n0).Stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop node0's agent: %v", err)
	}
	s := &stranger{conn: listenIn(t, n0.NS, netip.AddrPortFrom(n0.UnderlayIP, ssPort)), victim: victim, replay: replay}
	s.wg.Add(1)
	go s.run(n0.UnderlayIP)
	t.Cleanup(func() { s.conn.Close(); s.wg.Wait() })

	// node1 starts again: every candidate is probed at once, then after
	// 1, 2, 4 ... seconds.
	if err := c.Agent(n1).Stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop node1's agent: %v", err)
	}
	c.start(n1)
	labtest.WaitUp(t, c.Lab, n1, upTimeout)
	labtest.Eventually(t, 30*time.Second, "node1 refusing the stranger's answers", func() error {
		forged := labtest.Metric(t, n1, `overlayd_samesite_answers_received_total{result="bad_signature"}`)
		replayed := labtest.Metric(t, n1, `overlayd_samesite_answers_received_total{result="unknown_nonce"}`)
		if s.probes.Load() < 3 || forged < 3 || replayed < 1 {
			return fmt.Errorf("stranger got %d probes, sent %d answers; node1 counted %v forged, %v unknown nonce",
				s.probes.Load(), s.answers.Load(), forged, replayed)
		}
		return nil
	})
	if got := fdbDst(t, n1, mac2); got != n2.PublicIP.String() {
		t.Errorf("node1 sends node2's VXLAN to %s, want its public address %s", got, n2.PublicIP)
	}
	if v := labtest.Metric(t, n1, "overlayd_samesite_verified_peers"); v != 0 {
		t.Errorf("node1 verified %v same-site peers, want 0 (node0's responder is gone, node2 is remote)", v)
	}
	labtest.RequireAlive(c.t, c.Lab, n1, n2)
	c.mustPingAll("with the stranger answering")
	t.Logf("stranger: %d probes, %d answers", s.probes.Load(), s.answers.Load())
}
