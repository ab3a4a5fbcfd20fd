package csumtrigger

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// Scenario is one run on a lab whose agents are up: the client node's own
// network namespace (the host, as kubelet or a hostNetwork pod) talks to a
// Service VIP that DNATs to a pod on the server node.
type Scenario struct {
	Client, Server *lab.Node
	Backend        *lab.Pod
	VIP            netip.AddrPort
	BackendPort    uint16
	VXLANPort      int
	Load           Load
	// WireChecksums makes each node's underlay veth finish checksums in
	// software as a NIC does on the wire (tx-checksum-ip-generic off on
	// ul0). Without it a veth hands the receiver a "checksum still to do"
	// packet that the receiver never verifies, and a corrupted checksum
	// would go unseen.
	WireChecksums bool
	// NoTrigger leaves the kube-proxy-style rules out (a control run); the
	// Service then has only its DNAT, without the mark and masquerade.
	NoTrigger bool
	WorkDir   string
}

// Result is the evidence of one run.
type Result struct {
	TCP         TCPResult
	UDP         UDPResult
	Server      Counters // deltas on the server node (outer UDP arrives here)
	Client      Counters // deltas on the client node (replies arrive here)
	Outer       OuterChecksums
	Masqueraded uint64 // KUBE-POSTROUTING masquerade hits: > TCP conns means the outer flows were masqueraded too
}

// Run installs the rules, drives the load and collects the evidence.
func Run(ctx context.Context, sc Scenario) (Result, error) {
	var res Result
	if sc.WireChecksums {
		for _, n := range []*lab.Node{sc.Client, sc.Server} {
			if err := netnsutil.Do(n.NS, func() error { return backend.SetTxChecksumOffload(n.Iface, false) }); err != nil {
				return res, fmt.Errorf("%s: checksums on the wire: %w", n.Name, err)
			}
		}
	}
	backendAddr := netip.AddrPortFrom(sc.Backend.IP, sc.BackendPort)
	if err := Install(ctx, sc.Client.NS, Service{VIP: sc.VIP, Backend: backendAddr, NoMasquerade: sc.NoTrigger}); err != nil {
		return res, err
	}
	srv, err := Serve(sc.Backend.NS, backendAddr)
	if err != nil {
		return res, err
	}
	defer srv.Close()
	capture, err := StartCapture(ctx, sc.Server.NS, sc.Server.Iface, sc.VXLANPort, sc.WorkDir)
	if err != nil {
		return res, err
	}
	serverBefore, err1 := ReadCounters(ctx, sc.Server.NS)
	clientBefore, err2 := ReadCounters(ctx, sc.Client.NS)
	if err := firstErr(err1, err2); err != nil {
		capture.Stop()
		return res, err
	}
	res.TCP = DriveTCP(ctx, sc.Client.NS, sc.VIP, sc.Load)
	res.UDP, err = DriveUDP(ctx, sc.Client.NS, sc.VIP, sc.Load, srv)
	outer, cerr := capture.Stop()
	res.Outer = outer
	serverAfter, err3 := ReadCounters(ctx, sc.Server.NS)
	clientAfter, err4 := ReadCounters(ctx, sc.Client.NS)
	masq, err5 := MasqueradedPackets(ctx, sc.Client.NS)
	res.Server, res.Client, res.Masqueraded = serverAfter.Sub(serverBefore), clientAfter.Sub(clientBefore), masq
	return res, firstErr(err, cerr, err3, err4, err5)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
