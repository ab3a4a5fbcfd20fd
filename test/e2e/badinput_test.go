package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
)

// TestMalformedConfigIsRetried: the daemon logs why the config is unusable,
// keeps retrying without crashing, and starts once the config is fixed.
func TestMalformedConfigIsRetried(t *testing.T) {
	l := labtest.NewLab(t, lab.Options{Nodes: 1, CNIPlugin: overlaydBin}, `{"Network":"10.244.0.0/16","SubnetLen":31,"Backend":{"Type":"vxlan"}}`)
	ctx := labtest.Context(t, 30*time.Second)
	n := l.Nodes[0]
	a, err := l.StartAgent(ctx, n, lab.OverlaydArgs(overlaydBin, l, n))
	if err != nil {
		t.Fatal(err)
	}
	labtest.Eventually(t, 10*time.Second, "config error logged", func() error {
		return labtest.LogContains(a, "SubnetLen", "31")
	})
	time.Sleep(1500 * time.Millisecond) // a couple of retries
	if a.Exited() {
		t.Fatalf("overlayd exited on a bad config:\n%s", a.LogTail(20))
	}
	if err := l.WriteConfig(ctx, testConfig); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WaitSubnetFile(ctx, n); err != nil {
		t.Fatalf("no subnet file after the config was fixed: %v", err)
	}
}

// TestMalformedPeerLeaseIsSkipped: bad keys and values under the subnets
// prefix are skipped with a warning naming the key; other peers keep
// their entries and traffic.
func TestMalformedPeerLeaseIsSkipped(t *testing.T) {
	c := startCluster(t, 2, 1)
	c.mustPingAll()
	cli := labtest.EtcdClient(t, c.Lab)
	dir := subnet.SubnetsDir(subnet.DefaultPrefix)
	bad := map[string]string{
		dir + "10.244.200.0-24": `{"PublicIP":"192.0.2.77","BackendType":"vxlan","BackendData":{"VtepMAC":"not-a-mac"}}`,
		dir + "10.244.201.0-24": `{"PublicIP":`,
		dir + "garbage-key":     `{"PublicIP":"192.0.2.78","BackendType":"vxlan","BackendData":{"VtepMAC":"02:00:00:00:00:01"}}`,
		dir + "10.244.202.0-24": `{"PublicIP":"192.0.2.79","BackendType":"udp","BackendData":null}`,
	}
	ctx := labtest.Context(t, 20*time.Second)
	for k, v := range bad {
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	n := c.Nodes[0]
	labtest.Eventually(t, 10*time.Second, "warnings naming the bad keys", func() error {
		if err := labtest.LogContains(c.Agent(n), "10.244.200.0-24", "VtepMAC"); err != nil {
			return err
		}
		if err := labtest.LogContains(c.Agent(n), "10.244.201.0-24"); err != nil {
			return err
		}
		return labtest.LogContains(c.Agent(n), "garbage-key")
	})
	if c.Agent(n).Exited() {
		t.Fatal("overlayd exited on a malformed peer lease")
	}
	peer := c.Nodes[1]
	mac, _ := leaseOf(t, c, peer)
	st := labtest.MustDeviceState(t, ctx, c.Lab, n, lab.FlannelDevice)
	if err := expectEntries(st, peer.Subnet.Lease(), mac, peer.PublicIP); err != nil {
		t.Fatalf("a malformed lease disturbed a good peer: %v", err)
	}
	if len(st.Routes) != 1 {
		t.Fatalf("want exactly the one good peer's route, have %q", st.Routes)
	}
	c.mustPingAll()
}

// TestUnusableFlagsExitWithTheFlagNamed: bad flags exit 2 naming the
// flag and the value, before touching anything.
func TestUnusableFlagsExitWithTheFlagNamed(t *testing.T) {
	netnsutil.RequireRoot(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--public-ip=300.1.1.1"}, `--public-ip: "300.1.1.1" is not an IP address`},
		{[]string{"--subnet-lease-renew-margin=5000"}, "--subnet-lease-renew-margin: 5000"},
		{[]string{"--etcd-endpoints=etcd:2379"}, `--etcd-endpoints: "etcd:2379"`},
		{[]string{"--no-such-flag"}, "no-such-flag"},
	}
	for _, tt := range tests {
		cmd := exec.CommandContext(context.Background(), overlaydBin, tt.args...)
		out, err := cmd.CombinedOutput()
		exitErr, ok := err.(*exec.ExitError)
		if !ok || exitErr.ExitCode() != 2 {
			t.Errorf("%v: exit %v, want status 2; output %s", tt.args, err, out)
			continue
		}
		if !strings.Contains(string(out), tt.want) {
			t.Errorf("%v: output %q does not name %q", tt.args, out, tt.want)
		}
	}
}
