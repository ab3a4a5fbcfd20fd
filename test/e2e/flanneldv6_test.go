package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/etcdv3"
)

const (
	dualStackConfig        = `{"Network":"10.244.0.0/16","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"2001:db8:100::/56","Backend":{"Type":"vxlan"}}`
	flanneldIPv6OnlyConfig = `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8:100::/56","Backend":{"Type":"vxlan"}}`
)

// nodeIPv6 is the IPv6 underlay address the test gives node i.
func nodeIPv6(i int) netip.Addr { return labtest.NodeIPv6(i) }

// overlaydDualStackLease acquires node n's lease through overlayd's own
// lease manager (what the daemon runs), dual-stack or IPv6-only.
func overlaydDualStackLease(t *testing.T, etcdURL string, n *lab.Node, i int, configJSON string) subnet.Lease {
	t.Helper()
	cfg, err := subnet.ParseConfig([]byte(configJSON))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := etcdv3.New(labtest.Context(t, 10*time.Second), etcdv3.Options{Endpoints: []string{etcdURL}, Prefix: subnet.DefaultPrefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	attrs := subnet.LeaseAttrs{
		PublicIPv6: nodeIPv6(i), BackendType: subnet.BackendVXLAN,
		BackendV6Data: json.RawMessage(`{"VNI":1,"VtepMAC":"0a:00:00:00:06:01"}`),
		NodeID:        "0123456789abcdef0123456789abcdef",
	}
	if cfg.EnableIPv4 {
		attrs.PublicIP = n.PublicIP
		attrs.BackendData = json.RawMessage(`{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}`)
	}
	m, err := subnet.NewManager(subnet.ManagerOptions{Registry: reg, Config: cfg, Attrs: attrs})
	if err != nil {
		t.Fatal(err)
	}
	lease, err := m.Acquire(labtest.Context(t, 20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return lease
}

// startFlanneldV6 starts the real flanneld on n advertising nodeIPv6(i),
// and waits until its lease is in etcd and its subnet file written; the
// test fails with flanneld's log if it exits first.
func startFlanneldV6(t *testing.T, l *lab.Lab, bin string, n *lab.Node, i int, leasesBefore int) (key string, value []byte) {
	t.Helper()
	a, err := l.StartFlanneld(context.Background(), n, bin, "--public-ipv6="+nodeIPv6(i).String())
	if err != nil {
		t.Fatal(err)
	}
	labtest.Eventually(t, 45*time.Second, "flanneld's lease and subnet file", func() error {
		if a.Exited() {
			t.Fatalf("flanneld on %s exited: %v\n%s", n.Name, a.Wait(), a.LogTail(40))
		}
		env, err := subnet.ReadSubnetFile(n.SubnetFile)
		if err != nil || !env.IPv6Subnet.IsValid() {
			return fmt.Errorf("subnet file: %+v, %v", env, err)
		}
		if kvs := labtest.StoredLeases(t, l); len(kvs) != leasesBefore+1 {
			return fmt.Errorf("%d leases", len(kvs))
		}
		return nil
	})
	time.Sleep(time.Second) // a crash right after the file is written would show here
	if a.Exited() {
		t.Fatalf("flanneld on %s exited: %v\n%s", n.Name, a.Wait(), a.LogTail(40))
	}
	for _, kv := range labtest.StoredLeases(t, l) {
		if strings.Contains(string(kv.Value), nodeIPv6(i).String()) {
			return path.Base(string(kv.Key)), kv.Value
		}
	}
	t.Fatalf("no lease carries flanneld's PublicIPv6 %s", nodeIPv6(i))
	return "", nil
}

// jsonFieldOrder is the top-level field names of a JSON object, in order.
func jsonFieldOrder(t *testing.T, value []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(value))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s is not a JSON object", value)
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// checkSameForm: flanneld's key parses with overlayd's parser and formats
// back to the very key, and its value re-encoded by overlayd is byte for
// byte what flanneld wrote.
func checkSameForm(t *testing.T, key string, value []byte) subnet.LeaseID {
	t.Helper()
	id, err := subnet.ParseLeaseIDName(key)
	if err != nil {
		t.Fatalf("flanneld's key %q: %v", key, err)
	}
	if id.KeyName() != key {
		t.Errorf("flanneld's key %q, overlayd writes %q for the same subnets", key, id.KeyName())
	}
	attrs, err := subnet.UnmarshalLeaseAttrs(value)
	if err != nil {
		t.Fatalf("flanneld's value %s: %v", value, err)
	}
	ours, err := subnet.MarshalLeaseAttrs(attrs, subnet.FormV028)
	if err != nil || !bytes.Equal(ours, value) {
		t.Errorf("flanneld wrote\n%s\noverlayd writes the same lease as\n%s (%v)", value, ours, err)
	}
	return id
}

// TestFlanneldDualStackNextToOverlayd: with EnableIPv6, an overlayd node's
// dual-stack lease is in etcd; a real flanneld v0.28.10 then starts (the
// crash of issue 15, a nil IPv6Subnet in allocateSubnet, must not happen),
// picks subnets of both families that overlap none of ours, and writes a
// key and value in exactly the form overlayd writes; overlayd's lease has
// flanneld's fields in flanneld's order; restarted, overlayd reuses it.
func TestFlanneldDualStackNextToOverlayd(t *testing.T) {
	netnsutil.RequireRoot(t)
	bin := lab.FlanneldBinaryT(t)
	etcd := etcdtest.StartT(t, etcdtest.Options{})
	l := lab.NewT(t, lab.Options{Nodes: 2, EtcdEndpoint: etcd.Endpoint()})
	if err := l.WriteConfig(labtest.Context(t, 20*time.Second), dualStackConfig); err != nil {
		t.Fatal(err)
	}
	labtest.AddIPv6Underlay(t, l)
	ours := overlaydDualStackLease(t, etcd.Endpoint(), l.Nodes[0], 0, dualStackConfig)
	if !ours.IPv6Subnet.IsValid() || !ours.Subnet.IsValid() {
		t.Fatalf("overlayd's lease %s is not dual-stack", ours.ID())
	}
	key, value := startFlanneldV6(t, l, bin, l.Nodes[1], 1, 1)
	theirs := checkSameForm(t, key, value)
	if !theirs.Subnet.IsValid() || !theirs.IPv6Subnet.IsValid() {
		t.Errorf("flanneld's lease %s is not dual-stack", key)
	}
	if theirs.Subnet.Overlaps(ours.Subnet) || theirs.IPv6Subnet.Overlaps(ours.IPv6Subnet) {
		t.Errorf("flanneld took %s, overlapping overlayd's %s", theirs, ours.ID())
	}
	var ourValue []byte
	for _, kv := range labtest.StoredLeases(t, l) {
		if path.Base(string(kv.Key)) == ours.ID().KeyName() {
			ourValue = kv.Value
		}
	}
	if ourValue == nil {
		t.Fatalf("overlayd's key %s not in etcd", ours.ID().KeyName())
	}
	flan, our := jsonFieldOrder(t, value), jsonFieldOrder(t, ourValue)
	if len(our) < len(flan) || strings.Join(our[:len(flan)], ",") != strings.Join(flan, ",") {
		t.Errorf("field order: flanneld %v, overlayd %v (flanneld's fields first, in its order)", flan, our)
	}
	// overlayd restarts: it finds its dual-stack lease again, both subnets.
	if again := overlaydDualStackLease(t, etcd.Endpoint(), l.Nodes[0], 0, dualStackConfig); again.ID() != ours.ID() {
		t.Errorf("after a restart overlayd holds %s, want its lease %s again", again.ID(), ours.ID())
	}
	env, err := subnet.ReadSubnetFile(l.Nodes[1].SubnetFile)
	if err != nil || env.IPv6Network != netip.MustParsePrefix("2001:db8:100::/56") || env.IPv6Subnet.Masked() != theirs.IPv6Subnet {
		t.Errorf("flanneld's subnet file %+v (%v): want FLANNEL_IPV6_NETWORK and FLANNEL_IPV6_SUBNET of its lease", env, err)
	}
}

// TestFlanneldIPv6OnlyLeaseForm: what flanneld v0.28.10 writes for an
// IPv6-only network (EnableIPv4 false) is the form overlayd writes: key
// "0.0.0.0-0&<v6>-<len>", PublicIP "0.0.0.0", no BackendData.
func TestFlanneldIPv6OnlyLeaseForm(t *testing.T) {
	netnsutil.RequireRoot(t)
	bin := lab.FlanneldBinaryT(t)
	l := lab.NewT(t, lab.Options{Nodes: 1})
	if err := l.WriteConfig(labtest.Context(t, 20*time.Second), flanneldIPv6OnlyConfig); err != nil {
		t.Fatal(err)
	}
	labtest.AddIPv6Underlay(t, l)
	key, value := startFlanneldV6(t, l, bin, l.Nodes[0], 0, 0)
	t.Logf("flanneld's IPv6-only lease: %s = %s", key, value)
	id := checkSameForm(t, key, value)
	if id.Subnet.IsValid() || !strings.HasPrefix(key, "0.0.0.0-0&") {
		t.Errorf("flanneld's IPv6-only key %q", key)
	}
}
