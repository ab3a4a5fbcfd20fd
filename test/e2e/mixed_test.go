package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
)

// flanneldLease is a lease value as flanneld reads it: encoding/json into
// a struct with flannel's field names (matched case-insensitively, unknown
// fields such as OverlaydPrivateIP ignored).
type flanneldLease struct {
	PublicIP    string
	PublicIPv6  *string
	BackendType string
	BackendData json.RawMessage
}

type flanneldVXLANData struct {
	VNI     int
	VtepMAC string
}

// TestMixedClusterWithFlanneldNode: two overlayd nodes and one node set up
// exactly as flanneld v0.28 leaves it (docs/compatibility.md: its lease JSON,
// device, address, entries and subnet file, written by this test since no
// flanneld binary is available here). Traffic flows in both directions:
// overlayd reads the flanneld lease, and the "flanneld" node reads
// overlayd's leases with flanneld's JSON decoding.
func TestMixedClusterWithFlanneldNode(t *testing.T) {
	l := labtest.NewLab(t, lab.Options{Nodes: 3, PodsPerNode: 1, CNIPlugin: overlaydBin}, testConfig)
	c := &cluster{Lab: l, t: t}
	ctx := labtest.Context(t, 60*time.Second)
	flan := l.Nodes[2]
	const flanMAC = "56:b3:03:00:ef:bd"
	flanSubnet := netip.MustParsePrefix("10.244.37.0/24")
	putFlanneldLease(t, l, flanSubnet, fmt.Sprintf(
		`{"PublicIP":"%s","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"%s"}}`, flan.UnderlayIP, flanMAC))
	setUpFlanneldDevice(t, flan, flanSubnet, flanMAC)

	for _, n := range l.Nodes[:2] {
		c.start(n)
	}
	for _, n := range l.Nodes[:2] {
		c.waitUp(n)
		if err := l.AddPods(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	programLikeFlanneld(t, l, flan, flanSubnet)
	env := lab.SubnetEnv{Network: l.Network, Subnet: netip.PrefixFrom(flanSubnet.Addr().Next(), 24), MTU: 1450, IPMasq: true}
	if err := flan.WriteSubnetFile(env); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WaitSubnetFile(ctx, flan); err != nil {
		t.Fatal(err)
	}
	if err := l.AddPods(ctx, flan); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes[:2] {
		labtest.Eventually(t, 10*time.Second, n.Name+" programs the flanneld node", func() error {
			st, err := l.DeviceState(ctx, n, lab.FlannelDevice)
			if err != nil {
				return err
			}
			return expectEntries(st, flanSubnet, flanMAC, flan.UnderlayIP)
		})
	}
	c.mustPingAll()
}

func putFlanneldLease(t *testing.T, l *lab.Lab, sn netip.Prefix, value string) {
	t.Helper()
	cli := labtest.EtcdClient(t, l)
	ctx := labtest.Context(t, 5*time.Second)
	grant, err := cli.Grant(ctx, 24*3600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, subnet.LeaseKey(subnet.DefaultPrefix, sn), value, clientv3.WithLease(grant.ID)); err != nil {
		t.Fatal(err)
	}
}

func setUpFlanneldDevice(t *testing.T, n *lab.Node, sn netip.Prefix, mac string) {
	t.Helper()
	netnsutil.MustExec(t, n.NS, "ip", "link", "add", "flannel.1", "address", mac, "mtu", "1450", "type", "vxlan",
		"id", "1", "local", n.UnderlayIP.String(), "dev", n.Iface, "dstport", "8472", "nolearning")
	netnsutil.MustExec(t, n.NS, "ip", "addr", "add", sn.Addr().String()+"/32", "dev", "flannel.1")
	netnsutil.MustExec(t, n.NS, "ip", "link", "set", "flannel.1", "up")
}

// programLikeFlanneld reads every other lease the way flanneld does and
// installs flanneld's three entries for each.
func programLikeFlanneld(t *testing.T, l *lab.Lab, self *lab.Node, own netip.Prefix) {
	t.Helper()
	for _, kv := range labtest.StoredLeases(t, l) {
		sn, err := subnet.ParseLeaseKey(subnet.DefaultPrefix, string(kv.Key))
		if err != nil || sn == own {
			continue
		}
		var lease flanneldLease
		if err := json.Unmarshal(kv.Value, &lease); err != nil {
			t.Fatalf("flanneld could not decode overlayd's lease %s: %v", kv.Key, err)
		}
		var data flanneldVXLANData
		if err := json.Unmarshal(lease.BackendData, &data); err != nil || lease.BackendType != "vxlan" {
			t.Fatalf("flanneld could not decode BackendData of %s: %v (%s)", kv.Key, err, kv.Value)
		}
		gw := sn.Addr().String()
		ctx := context.Background()
		for _, cmd := range [][]string{
			{"ip", "neigh", "replace", gw, "lladdr", data.VtepMAC, "dev", "flannel.1", "nud", "permanent"},
			{"bridge", "fdb", "replace", data.VtepMAC, "dev", "flannel.1", "dst", lease.PublicIP, "self", "permanent"},
			{"ip", "route", "replace", sn.String(), "via", gw, "dev", "flannel.1", "onlink"},
		} {
			if _, err := netnsutil.Exec(ctx, self.NS, cmd...); err != nil {
				t.Fatalf("flanneld-style %s: %v", strings.Join(cmd, " "), err)
			}
		}
	}
}
