package publiccloud

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/iptables"
	"github.com/overlayd/overlayd/offload"
)

// TestNATEveryPairCarriesTraffic: three nodes, each behind its own 1:1 NAT
// router (separate VPCs, all with private address 198.51.100.2), etcd only
// through the routers, overlayd run with --iface=ul0 and --public-ip=<NAT
// address>. Every pod reaches every other; each node says in its log and
// on /status which address it binds and which it advertises; FDB entries
// go to the public addresses; the lease still reads as flanneld's; and
// tx checksum offload on flannel.1 is what --tx-checksum-offload=auto
// decides for this kernel, and /status says so.
func TestNATEveryPairCarriesTraffic(t *testing.T) {
	l := startCluster(t, lab.Options{Nodes: 3, PodsPerNode: 1, Topology: lab.NAT})
	ctx := labtest.Context(t, 30*time.Second)
	for _, n := range l.Nodes {
		if n.UnderlayIP.String() != "198.51.100.2" {
			t.Fatalf("%s: underlay %s; the lab no longer gives every VPC the same private address", n.Name, n.UnderlayIP)
		}
	}
	for _, n := range l.Nodes {
		t.Run(n.Name, func(t *testing.T) {
			checkAddressesReported(t, l, n)
			checkFDBGoesToPublicAddresses(t, l, n)
			value := rawLease(t, ctx, l, n)
			if !strings.Contains(string(value), `"OverlaydPrivateIP":"198.51.100.2"`) {
				t.Errorf("lease %s lacks the private address", value)
			}
			flannelReads(t, value, n.PublicIP.String(), labtest.VtepMAC(t, ctx, l, n))
			checkTxChecksumOffloadAsDecided(t, n)
		})
	}
}

// checkAddressesReported: the log names both addresses and says the
// advertised one is on no interface; /status shows both.
func checkAddressesReported(t *testing.T, l *lab.Lab, n *lab.Node) {
	t.Helper()
	log, err := os.ReadFile(l.Agent(n).LogPath)
	if err != nil {
		t.Fatal(err)
	}
	bind, advertise := "bind="+n.UnderlayIP.String(), "advertise="+n.PublicIP.String()
	var chosen, offHost bool
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, `msg="underlay chosen"`) && strings.Contains(line, bind) && strings.Contains(line, advertise) {
			chosen = true
		}
		if strings.Contains(line, "the advertised address is on no interface") && strings.Contains(line, bind) && strings.Contains(line, advertise) {
			offHost = true
		}
	}
	if !chosen || !offHost {
		t.Errorf("log: underlay line with %s %s: %v; on-no-interface line: %v\n%s", bind, advertise, chosen, offHost, l.Agent(n).LogTail(30))
	}
	st := getStatus(t, labtest.Context(t, 10*time.Second), n)
	u := st.Underlay
	if !st.Ready || u.Iface != lab.UnderlayIface || u.Bind != n.UnderlayIP.String() || u.Advertise != n.PublicIP.String() || u.AdvertiseOnHost {
		t.Errorf("/status: ready %v underlay %+v; want ready, iface %s, bind %s, advertise %s, advertiseOnHost false",
			st.Ready, u, lab.UnderlayIface, n.UnderlayIP, n.PublicIP)
	}
}

// checkFDBGoesToPublicAddresses: separate VPCs, so no peer is same-site
// (their private address is our own): VXLAN goes to the NAT addresses.
func checkFDBGoesToPublicAddresses(t *testing.T, l *lab.Lab, n *lab.Node) {
	t.Helper()
	ctx := labtest.Context(t, 10*time.Second)
	dsts := fdbDsts(t, ctx, n)
	for _, peer := range l.Nodes {
		if peer == n {
			continue
		}
		if mac := labtest.VtepMAC(t, ctx, l, peer); dsts[mac] != peer.PublicIP.String() {
			t.Errorf("FDB entry of %s (%s) goes to %q, want its public %s; FDB %v", peer.Name, mac, dsts[mac], peer.PublicIP, dsts)
		}
	}
}

// checkTxChecksumOffloadAsDecided: by default (auto) the node exempts its
// outer VXLAN packets from conntrack and NAT and keeps tx checksum offload
// on, as flanneld's data path does; /status says so, with the reason.
func checkTxChecksumOffloadAsDecided(t *testing.T, n *lab.Node) {
	t.Helper()
	var on bool
	err := netnsutil.Do(n.NS, func() error {
		var err error
		on, err = backend.TxChecksumOffloadEnabled(lab.FlannelDevice)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !on {
		t.Errorf("%s on %s is off, want on (auto with the NAT exemption)", backend.TxChecksumFeature, lab.FlannelDevice)
	}
	raw := netnsutil.MustExec(t, n.NS, "iptables", "-t", "raw", "-S", iptables.NoTrackChain)
	want := fmt.Sprintf("-A %s -s %s/32 -p udp -m udp --dport 8472", iptables.NoTrackChain, n.UnderlayIP)
	if !strings.Contains(raw, want) {
		t.Errorf("raw %s lacks %q:\n%s", iptables.NoTrackChain, want, raw)
	}
	st := getStatus(t, labtest.Context(t, 10*time.Second), n)
	if st.Device == nil || st.Device.TxChecksumOffload == nil {
		t.Fatalf("/status has no device.txChecksumOffload")
	}
	if o := st.Device.TxChecksumOffload; !o.On || o.Mode != "auto" || o.Why != string(offload.WhyExempt) {
		t.Errorf("/status txChecksumOffload %+v, want on, mode auto, why %s", *o, offload.WhyExempt)
	}
}
