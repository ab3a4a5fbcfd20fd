package doctor

import (
	"context"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/doctor"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
)

// TestDoctorHealthyAndEachFailure: three nodes, each behind its own 1:1
// NAT router, one pod each. Doctor on a healthy node passes every check;
// then each failure of issue 18 is induced (inside the lab's namespaces
// only), doctor run in that node's namespace must name it, and the
// failure is undone before the next.
func TestDoctorHealthyAndEachFailure(t *testing.T) {
	c := startCluster(t, lab.Options{Nodes: 3, PodsPerNode: 1, Topology: lab.NAT})
	n0, n1, n2 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	c.expectHealthy(t, n0)
	ok := t.Run("ip_forward off, then --fix", func(t *testing.T) { ipForwardOff(t, c, n0) })
	ok = t.Run("subnet.env deleted", func(t *testing.T) { subnetFileDeleted(t, c, n0) }) && ok
	ok = t.Run("cni0 with a stale address", func(t *testing.T) {
		in(t, n0.NS, "ip", "addr", "add", "10.244.250.1/24", "dev", "cni0")
		defer in(t, n0.NS, "ip", "addr", "del", "10.244.250.1/24", "dev", "cni0")
		c.expectNamed(t, n0, "files", "cni0 address", doctor.Fail, "10.244.250.1/24", "ip link delete cni0")
	}) && ok
	ok = t.Run("duplicate PublicIP", func(t *testing.T) { duplicatePublicIP(t, c, n0) }) && ok
	ok = t.Run("8472 blocked by a router", func(t *testing.T) {
		in(t, n1.Router, "iptables", "-I", "FORWARD", "-p", "udp", "--dport", "8472", "-j", "DROP")
		defer in(t, n1.Router, "iptables", "-D", "FORWARD", "-p", "udp", "--dport", "8472", "-j", "DROP")
		c.expectNamed(t, n0, "reachability", "peer "+n1.Subnet.Lease().String(), doctor.Fail, "UDP 8472 (VXLAN) is blocked")
	}) && ok
	ok = t.Run("MTU mismatch on the underlay", func(t *testing.T) {
		in(t, n1.NS, "ip", "link", "set", n1.Iface, "mtu", "1400")
		defer in(t, n1.NS, "ip", "link", "set", n1.Iface, "mtu", "1500")
		c.expectNamed(t, n0, "reachability", "path MTU", doctor.Fail, "MTU black hole", "carries")
	}) && ok
	ok = t.Run("etcd unreachable", func(t *testing.T) { etcdUnreachable(t, c, n0) }) && ok
	t.Run("wrong --public-ip and FORWARD DROP without our rule", func(t *testing.T) {
		if !ok {
			t.Skip("an earlier failure left the cluster in an unknown state")
		}
		wrongPublicIPAndForwardDrop(t, c, n2)
	})
}

func ipForwardOff(t *testing.T, c *cluster, n *lab.Node) {
	in(t, n.NS, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	defer in(t, n.NS, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	c.expectNamed(t, n, "kernel", "ip_forward", doctor.Fail, "net.ipv4.ip_forward = 0")
	// --fix, inside the node's namespace only: ip_forward is per netns.
	rep, _ := c.runDoctor(t, n, "--fix")
	res, _ := rep.Find("kernel", "ip_forward")
	if res.Status != doctor.OK || res.Changed != "net.ipv4.ip_forward: 0 -> 1" {
		t.Errorf("doctor --fix: ip_forward %+v", res)
	}
	out, err := netnsutil.Exec(labtest.Context(t, 5*time.Second), n.NS, "sysctl", "-n", "net.ipv4.ip_forward")
	if err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("after --fix, ip_forward in %s reads %q (%v)", n.Name, out, err)
	}
}

func subnetFileDeleted(t *testing.T, c *cluster, n *lab.Node) {
	saved, err := os.ReadFile(n.SubnetFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(n.SubnetFile); err != nil {
		t.Fatal(err)
	}
	defer os.WriteFile(n.SubnetFile, saved, 0o644)
	c.expectNamed(t, n, "files", "subnet file", doctor.Fail, "no such file or directory")
}

func duplicatePublicIP(t *testing.T, c *cluster, n *lab.Node) {
	ctx := labtest.Context(t, 20*time.Second)
	ec := labtest.EtcdClient(t, c.Lab)
	other := netip.MustParsePrefix("10.244.251.0/24")
	value, err := subnet.MarshalLeaseAttrs(subnet.LeaseAttrs{PublicIP: n.PublicIP, BackendType: "vxlan",
		BackendData: []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:00:fb"}`)}, subnet.FormV028)
	if err != nil {
		t.Fatal(err)
	}
	key := subnet.LeaseKey(subnet.DefaultPrefix, other)
	if _, err := ec.Put(ctx, key, string(value)); err != nil {
		t.Fatal(err)
	}
	defer ec.Delete(context.Background(), key)
	c.expectNamed(t, n, "addresses", "public IP unique", doctor.Fail, other.String(), "also advertise "+n.PublicIP.String())
}

func etcdUnreachable(t *testing.T, c *cluster, n *lab.Node) {
	u, err := url.Parse(c.EtcdURL)
	if err != nil {
		t.Fatal(err)
	}
	rule := []string{"OUTPUT", "-p", "tcp", "-d", u.Hostname(), "--dport", u.Port(), "-j", "REJECT", "--reject-with", "tcp-reset"}
	in(t, n.NS, append([]string{"iptables", "-I"}, rule...)...)
	defer in(t, n.NS, append([]string{"iptables", "-D"}, rule...)...)
	c.expectNamed(t, n, "datastore", "reachable", doctor.Fail, "etcd unreachable", "--etcd-endpoints")
}

// wrongPublicIPAndForwardDrop restarts n with a --public-ip that is not
// its NAT address and without FLANNEL-FWD, then sets Docker's FORWARD
// policy: doctor names both.
func wrongPublicIPAndForwardDrop(t *testing.T, c *cluster, n *lab.Node) {
	if err := c.Agent(n).Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wrong := "203.0.113.99"
	startAgent(t, c.Lab, n, "--public-ip="+wrong, "--iptables-forward-rules=false")
	labtest.WaitUp(t, c.Lab, n, upTimeout)
	in(t, n.NS, "iptables", "-F", "FORWARD")
	in(t, n.NS, "iptables", "-P", "FORWARD", "DROP")
	rep := c.expectNamed(t, n, "addresses", "advertised address", doctor.Fail, "sees this node as "+n.PublicIP.String(), "--public-ip="+n.PublicIP.String())
	res, _ := rep.Find("iptables", "forward")
	if res.Status != doctor.Fail || !strings.Contains(res.Detail, "policy DROP") {
		t.Errorf("iptables/forward: %s: %s", res.Status, res.Detail)
	}
}
