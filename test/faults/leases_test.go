package faults

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/vxlandata"
)

// peerLease is what a well-formed vxlan lease asks peers to program.
type peerLease struct {
	PublicIP netip.Addr
	MAC      string
}

// leases reads every well-formed vxlan lease from etcd (malformed entries
// and other backends are left out).
func (c *cluster) leases(ctx context.Context) (map[netip.Prefix]peerLease, error) {
	dir := subnet.SubnetsDir(subnet.DefaultPrefix)
	resp, err := c.cli.Get(ctx, dir, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	out := map[netip.Prefix]peerLease{}
	for _, kv := range resp.Kvs {
		sn, err := subnet.ParseLeaseKey(subnet.DefaultPrefix, string(kv.Key))
		if err != nil {
			continue
		}
		attrs, err := subnet.UnmarshalLeaseAttrs(kv.Value)
		if err != nil || attrs.BackendType != subnet.BackendVXLAN {
			continue
		}
		data, err := vxlandata.Unmarshal(attrs.BackendData)
		if err != nil {
			continue
		}
		out[sn] = peerLease{PublicIP: attrs.PublicIP, MAC: data.VtepMAC.String()}
	}
	return out, nil
}

func (c *cluster) mustLeases() map[netip.Prefix]peerLease {
	c.t.Helper()
	ls, err := c.leases(labtest.Context(c.t, 10*time.Second))
	if err != nil {
		c.t.Fatal(err)
	}
	return ls
}

// leaseValue is a flannel v0.28 vxlan lease value.
func leaseValue(publicIP netip.Addr, mac string) (string, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return "", err
	}
	data, err := vxlandata.Marshal(vxlandata.Data{VNI: 1, VtepMAC: hw}, true)
	if err != nil {
		return "", err
	}
	attrs := subnet.LeaseAttrs{PublicIP: publicIP, BackendType: subnet.BackendVXLAN, BackendData: data}
	v, err := subnet.MarshalLeaseAttrs(attrs, subnet.FormV028)
	return string(v), err
}

func leaseKey(sn netip.Prefix) string { return subnet.LeaseKey(subnet.DefaultPrefix, sn) }

// fakePeer is a lease written by hand for a node that does not run: its
// entries must appear on every real node all the same.
type fakePeer struct {
	Subnet   netip.Prefix
	PublicIP netip.Addr
	MAC      string
}

// newFakePeers makes count peers with subnets of first's length counted
// from first, skipping subnets that have a lease, addresses in
// 198.51.100.0/24 and MACs 0e:fa:ce:xx:xx:xx unique in the cluster.
func (c *cluster) newFakePeers(first netip.Prefix, count int) []fakePeer {
	c.t.Helper()
	held := c.mustLeases()
	peers := make([]fakePeer, 0, count)
	for sn := first; len(peers) < count; sn = nextPrefix(sn) {
		if _, ok := held[sn]; ok {
			continue
		}
		i := c.fakes
		c.fakes++
		peers = append(peers, fakePeer{Subnet: sn, PublicIP: netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i%250)}), MAC: fakeMAC(i)})
	}
	return peers
}

// nextPrefix is the prefix of the same length right after p.
func nextPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(1) << (32 - p.Bits())
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), p.Bits())
}

func fakeMAC(i int) string {
	return fmt.Sprintf("0e:fa:ce:%02x:%02x:%02x", byte(i>>16), byte(i>>8), byte(i))
}

// putPeers writes the peers as reservations (no TTL), 100 per transaction.
func (c *cluster) putPeers(peers []fakePeer) {
	c.t.Helper()
	ctx := labtest.Context(c.t, 30*time.Second)
	for start := 0; start < len(peers); start += 100 {
		var ops []clientv3.Op
		for _, p := range peers[start:min(start+100, len(peers))] {
			v, err := leaseValue(p.PublicIP, p.MAC)
			must(c.t, err)
			ops = append(ops, clientv3.OpPut(leaseKey(p.Subnet), v))
		}
		if _, err := c.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			c.t.Fatalf("put %d fake peers: %v", len(ops), err)
		}
	}
}

// deleteLeases deletes the leases of the given subnets, 100 per transaction.
func (c *cluster) deleteLeases(subnets ...netip.Prefix) {
	c.t.Helper()
	ctx := labtest.Context(c.t, 30*time.Second)
	for start := 0; start < len(subnets); start += 100 {
		var ops []clientv3.Op
		for _, sn := range subnets[start:min(start+100, len(subnets))] {
			ops = append(ops, clientv3.OpDelete(leaseKey(sn)))
		}
		if _, err := c.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			c.t.Fatalf("delete %d leases: %v", len(ops), err)
		}
	}
}

// put writes a raw key and value.
func (c *cluster) put(key, value string, opts ...clientv3.OpOption) {
	c.t.Helper()
	if _, err := c.cli.Put(labtest.Context(c.t, 10*time.Second), key, value, opts...); err != nil {
		c.t.Fatalf("put %s: %v", key, err)
	}
}

// rewriteNodeLease replaces the value of n's lease by hand, keeping its
// etcd lease (TTL): as if the node had written a new address or MAC.
func (c *cluster) rewriteNodeLease(n *lab.Node, publicIP netip.Addr, mac string) {
	c.t.Helper()
	v, err := leaseValue(publicIP, mac)
	must(c.t, err)
	c.put(leaseKey(n.Subnet.Lease()), v, clientv3.WithIgnoreLease())
}

// nodeLease returns n's lease as etcd holds it and the remaining TTL of
// its etcd lease (0 for a reservation).
func (c *cluster) nodeLease(n *lab.Node) (peerLease, time.Duration, error) {
	ctx := labtest.Context(c.t, 10*time.Second)
	key := leaseKey(n.Subnet.Lease())
	resp, err := c.cli.Get(ctx, key)
	if err != nil {
		return peerLease{}, 0, err
	}
	if len(resp.Kvs) == 0 {
		return peerLease{}, 0, fmt.Errorf("%s: lease %s does not exist", n.Name, key)
	}
	ls, err := c.leases(ctx)
	if err != nil {
		return peerLease{}, 0, err
	}
	l, ok := ls[n.Subnet.Lease()]
	if !ok {
		return peerLease{}, 0, fmt.Errorf("%s: lease %s is malformed: %s", n.Name, key, resp.Kvs[0].Value)
	}
	id := clientv3.LeaseID(resp.Kvs[0].Lease)
	if id == clientv3.NoLease {
		return l, 0, nil
	}
	ttl, err := c.cli.TimeToLive(ctx, id)
	if err != nil {
		return peerLease{}, 0, fmt.Errorf("%s: TTL of %s: %w", n.Name, key, err)
	}
	return l, time.Duration(ttl.TTL) * time.Second, nil
}

// nodeMAC is n's VTEP MAC as its lease states it.
func (c *cluster) nodeMAC(n *lab.Node) string {
	c.t.Helper()
	l, _, err := c.nodeLease(n)
	must(c.t, err)
	return l.MAC
}
