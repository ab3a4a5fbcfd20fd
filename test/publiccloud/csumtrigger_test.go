package publiccloud

import (
	"net/netip"
	"testing"
	"time"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/internal/csumtrigger"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// TestChecksumTriggerHarmlessByDefault rebuilds the condition under which
// tx checksum offload corrupts VXLAN (kube-proxy <1.19: node-to-Service
// traffic marked and masqueraded with --random-fully, the mark surviving
// into the outer packet) on node0, with checksums finished on the wire, and
// runs TCP and UDP from node0's host through the Service to a pod on node1,
// with overlayd's defaults, on both topologies. Offload is on (checked by
// the NAT test), and yet no connection stalls, no datagram is dropped for
// its checksum and tcpdump sees no bad outer checksum: the outer packets
// are exempt from NAT. With --tx-checksum-offload=on (no exemption) the
// same run stalls every connection on this machine's kernel 6.18
// (bench/csumtrigger; docs/public-cloud.md).
func TestChecksumTriggerHarmlessByDefault(t *testing.T) {
	for _, topo := range []lab.Topology{lab.Flat, lab.NAT} {
		t.Run(topo.String(), func(t *testing.T) {
			l := startCluster(t, lab.Options{Nodes: 2, PodsPerNode: 1, Topology: topo})
			ctx := labtest.Context(t, 90*time.Second)
			res, err := csumtrigger.Run(ctx, csumtrigger.Scenario{
				Client: l.Nodes[0], Server: l.Nodes[1], Backend: l.Nodes[1].Pods[0],
				VIP: netip.MustParseAddrPort("10.96.0.10:80"), BackendPort: 8080, VXLANPort: backend.DeviceDefaultPort,
				Load: csumtrigger.Load{Conns: 15, Bytes: 256 << 10, StallAfter: 900 * time.Millisecond, ConnLimit: 10 * time.Second,
					Datagrams: 300, DatagramSz: 1200},
				WireChecksums: true, WorkDir: t.TempDir(),
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			if res.Masqueraded < uint64(res.TCP.Conns) {
				t.Fatalf("the kube-proxy-style masquerade matched %d times for %d connections: the trigger is not in place", res.Masqueraded, res.TCP.Conns)
			}
			if res.TCP.Failed+res.TCP.Stalled > 0 {
				t.Errorf("TCP through the Service: %d failed, %d stalled of %d (slowest %s; %s)",
					res.TCP.Failed, res.TCP.Stalled, res.TCP.Conns, res.TCP.Slowest, res.TCP.FirstError)
			}
			if res.Server.UDPInCsumErrors+res.Client.UDPInCsumErrors > 0 || res.Outer.BadSum > 0 {
				t.Errorf("checksum errors: UdpInCsumErrors %d/%d, bad outer checksums seen %d",
					res.Server.UDPInCsumErrors, res.Client.UDPInCsumErrors, res.Outer.BadSum)
			}
			// Datagrams lost to a full socket buffer on a loaded machine are
			// not the fault looked for (the checksum counters above are):
			// most must arrive, through the trigger.
			if res.UDP.Sent == 0 || res.UDP.Received < res.UDP.Sent/2 {
				t.Errorf("UDP through the Service: %d of %d arrived", res.UDP.Received, res.UDP.Sent)
			}
		})
	}
}
