package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/doctor"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

const (
	upTimeout       = 45 * time.Second
	convergeTimeout = 20 * time.Second
)

// cluster is a lab with overlayd on every node and a CNI config and
// plugin directory as kube-flannel installs them.
type cluster struct {
	*lab.Lab
	cniConf, cniBin string
}

func startCluster(t *testing.T, opts lab.Options, extra ...string) *cluster {
	t.Helper()
	opts.CNIPlugin = overlaydBin
	l := lab.NewT(t, opts)
	ctx := labtest.Context(t, upTimeout)
	if err := l.WriteConfig(ctx, l.ConfigJSON()); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes {
		startAgent(t, l, n, extra...)
	}
	for _, n := range l.Nodes {
		labtest.WaitUp(t, l, n, upTimeout)
		if err := l.AddPods(ctx, n); err != nil {
			t.Fatalf("add pods on %s: %v", n.Name, err)
		}
	}
	if m, err := l.PingAllRetry(labtest.Context(t, convergeTimeout), 20, 500*time.Millisecond); err != nil {
		t.Fatalf("%v\n%s", err, m)
	}
	c := &cluster{Lab: l}
	c.cniConf, c.cniBin = cniDirs(t)
	return c
}

func startAgent(t *testing.T, l *lab.Lab, n *lab.Node, extra ...string) *lab.Agent {
	t.Helper()
	a, err := l.StartAgent(context.Background(), n, lab.OverlaydArgs(overlaydBin, l, n, extra...))
	if err != nil {
		t.Fatalf("start overlayd on %s: %v", n.Name, err)
	}
	return a
}

// cniDirs writes kube-flannel's conflist and a plugin directory holding
// overlayd as flannel and Debian's bridge, host-local, portmap, loopback.
func cniDirs(t *testing.T) (string, string) {
	t.Helper()
	conf, bin := t.TempDir(), t.TempDir()
	conflist := `{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}},{"type":"portmap","capabilities":{"portMappings":true}}]}`
	if err := os.WriteFile(filepath.Join(conf, "10-flannel.conflist"), []byte(conflist), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{"flannel": overlaydBin}
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		links[p] = filepath.Join(lab.DefaultCNIPluginDir, p)
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	return conf, bin
}

// doctorArgs is doctor's command line for node n, as an operator would
// give it: the daemon's flags plus the CNI directories.
func (c *cluster) doctorArgs(n *lab.Node, extra ...string) []string {
	args := []string{overlaydBin, "doctor", "--json", "--timeout=1s",
		"--etcd-endpoints=" + c.EtcdURL, "--subnet-file=" + n.SubnetFile,
		"--cni-conf-dir=" + c.cniConf, "--cni-bin-dir=" + c.cniBin}
	return append(args, extra...)
}

// runDoctor runs doctor inside n's namespace and returns its report and
// exit code.
func (c *cluster) runDoctor(t *testing.T, n *lab.Node, extra ...string) (doctor.Report, int) {
	t.Helper()
	ctx := labtest.Context(t, 90*time.Second)
	cmd := netnsutil.Command(ctx, n.NS, c.doctorArgs(n, extra...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("doctor on %s: %v\n%s", n.Name, err, stderr.String())
	}
	var rep doctor.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("doctor on %s: exit %d, output is not a report: %v\n%s\n%s", n.Name, code, err, out, stderr.String())
	}
	return rep, code
}

// expectNamed runs doctor on n and requires group/check to have status
// want, with every word in its detail or fix.
func (c *cluster) expectNamed(t *testing.T, n *lab.Node, group, check string, want doctor.Status, words ...string) doctor.Report {
	t.Helper()
	rep, code := c.runDoctor(t, n)
	res, ok := rep.Find(group, check)
	if !ok {
		t.Fatalf("doctor on %s has no %s/%s:\n%s", n.Name, group, check, describe(rep))
	}
	if res.Status != want {
		t.Errorf("doctor on %s: %s/%s is %s (%s), want %s", n.Name, group, check, res.Status, res.Detail, want)
	}
	for _, w := range words {
		if !strings.Contains(res.Detail+" "+res.Fix, w) {
			t.Errorf("doctor on %s: %s/%s %q lacks %q", n.Name, group, check, res.Detail+" fix: "+res.Fix, w)
		}
	}
	if want == doctor.Fail && code != doctor.ExitFailures {
		t.Errorf("doctor on %s: exit code %d, want %d", n.Name, code, doctor.ExitFailures)
	}
	return rep
}

// expectHealthy: every check on n passed and doctor exits 0.
func (c *cluster) expectHealthy(t *testing.T, n *lab.Node) {
	t.Helper()
	rep, code := c.runDoctor(t, n)
	for _, r := range rep.Results {
		if r.Status != doctor.OK {
			t.Errorf("doctor on healthy %s: %s/%s is %s: %s", n.Name, r.Group, r.Check, r.Status, r.Detail)
		}
	}
	if code != doctor.ExitOK {
		t.Errorf("doctor on healthy %s: exit code %d\n%s", n.Name, code, describe(rep))
	}
}

func describe(rep doctor.Report) string {
	var b strings.Builder
	for _, r := range rep.Results {
		fmt.Fprintf(&b, "%s %s/%s: %s\n", r.Status.Symbol(), r.Group, r.Check, r.Detail)
	}
	return b.String()
}

// in runs a command inside ns and fails the test on an error.
func in(t *testing.T, ns string, args ...string) {
	t.Helper()
	if out, err := netnsutil.Exec(labtest.Context(t, 20*time.Second), ns, args...); err != nil {
		t.Fatalf("ip netns exec %s %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
}
