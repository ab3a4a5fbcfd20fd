package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
)

const (
	dualStackConfig        = `{"Network":"10.244.0.0/16","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"2001:db8:100::/56","Backend":{"Type":"vxlan"}}`
	flanneldIPv6OnlyConfig = `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8:100::/56","Backend":{"Type":"vxlan"}}`
)

// startFlanneldV6 starts the real flanneld on n (advertising its
// UnderlayIP6, see lab.FlanneldArgs) and waits until its lease is in etcd
// and its subnet file written; the test fails with flanneld's log if it
// exits first.
func startFlanneldV6(t *testing.T, l *lab.Lab, bin string, n *lab.Node, leasesBefore int) (key string, value []byte) {
	t.Helper()
	a, err := l.StartFlanneld(context.Background(), n, bin)
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
		if strings.Contains(string(kv.Value), `"PublicIPv6":"`+n.UnderlayIP6.String()+`"`) {
			return path.Base(string(kv.Key)), kv.Value
		}
	}
	t.Fatalf("no lease carries flanneld's PublicIPv6 %s", n.UnderlayIP6)
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

// TestFlanneldDualStackNextToOverlayd: with EnableIPv6, an overlayd node
// runs with its dual-stack lease in etcd; a real flanneld v0.28.10 then
// starts (the crash of issue 15, a nil IPv6Subnet in allocateSubnet, must
// not happen), picks subnets of both families that overlap none of ours,
// and writes a key and value in exactly the form overlayd writes;
// overlayd's lease has flanneld's fields in flanneld's order; restarted,
// overlayd takes its lease back.
func TestFlanneldDualStackNextToOverlayd(t *testing.T) {
	netnsutil.RequireRoot(t)
	bin := lab.FlanneldBinaryT(t)
	l := lab.NewT(t, lab.Options{Nodes: 2, Underlay6: true})
	c := &cluster{Lab: l, t: t, store: v3Store{l}}
	if err := l.WriteConfig(labtest.Context(t, 20*time.Second), dualStackConfig); err != nil {
		t.Fatal(err)
	}
	n0 := l.Nodes[0]
	a := c.start(n0)
	c.waitUp(n0)
	ourKey, ourValue := onlyLease(t, l)
	ours, err := subnet.ParseLeaseIDName(ourKey)
	if err != nil || !ours.IPv6Subnet.IsValid() || !ours.Subnet.IsValid() {
		t.Fatalf("overlayd's lease %s is not dual-stack (%v)", ourKey, err)
	}
	key, value := startFlanneldV6(t, l, bin, l.Nodes[1], 1)
	theirs := checkSameForm(t, key, value)
	if !theirs.Subnet.IsValid() || !theirs.IPv6Subnet.IsValid() {
		t.Errorf("flanneld's lease %s is not dual-stack", key)
	}
	if theirs.Subnet.Overlaps(ours.Subnet) || theirs.IPv6Subnet.Overlaps(ours.IPv6Subnet) {
		t.Errorf("flanneld took %s, overlapping overlayd's %s", theirs, ours)
	}
	flan, our := jsonFieldOrder(t, value), jsonFieldOrder(t, ourValue)
	if len(our) < len(flan) || strings.Join(our[:len(flan)], ",") != strings.Join(flan, ",") {
		t.Errorf("field order: flanneld %v, overlayd %v (flanneld's fields first, in its order)", flan, our)
	}
	env, err := subnet.ReadSubnetFile(l.Nodes[1].SubnetFile)
	if err != nil || env.IPv6Network != netip.MustParsePrefix("2001:db8:100::/56") || env.IPv6Subnet.Masked() != theirs.IPv6Subnet {
		t.Errorf("flanneld's subnet file %+v (%v): want FLANNEL_IPV6_NETWORK and FLANNEL_IPV6_SUBNET of its lease", env, err)
	}
	// overlayd restarts: it finds its dual-stack lease again, both subnets.
	if err := a.Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.start(n0)
	c.waitUp(n0)
	env0, err := subnet.ReadSubnetFile(n0.SubnetFile)
	if err != nil || env0.Subnet.Masked() != ours.Subnet || env0.IPv6Subnet.Masked() != ours.IPv6Subnet {
		t.Errorf("after a restart overlayd's subnet file %+v (%v), want its lease %s again", env0, err, ours)
	}
}

// onlyLease is the one lease in the lab's etcd.
func onlyLease(t *testing.T, l *lab.Lab) (string, []byte) {
	t.Helper()
	kvs := labtest.StoredLeases(t, l)
	if len(kvs) != 1 {
		t.Fatalf("%d leases in etcd, want 1", len(kvs))
	}
	return path.Base(string(kvs[0].Key)), kvs[0].Value
}

// TestFlanneldIPv6OnlyLeaseForm: what flanneld v0.28.10 writes for an
// IPv6-only network (EnableIPv4 false) is the form overlayd writes: key
// "0.0.0.0-0&<v6>-<len>", PublicIP "0.0.0.0", no BackendData.
func TestFlanneldIPv6OnlyLeaseForm(t *testing.T) {
	netnsutil.RequireRoot(t)
	bin := lab.FlanneldBinaryT(t)
	l := lab.NewT(t, lab.Options{Nodes: 1, Underlay6: true, NoUnderlay4: true})
	if err := l.WriteConfig(labtest.Context(t, 20*time.Second), flanneldIPv6OnlyConfig); err != nil {
		t.Fatal(err)
	}
	key, value := startFlanneldV6(t, l, bin, l.Nodes[0], 0)
	t.Logf("flanneld's IPv6-only lease: %s = %s", key, value)
	id := checkSameForm(t, key, value)
	if id.Subnet.IsValid() || !strings.HasPrefix(key, "0.0.0.0-0&") {
		t.Errorf("flanneld's IPv6-only key %q", key)
	}
}
