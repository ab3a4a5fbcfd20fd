package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/report"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TestBenchBetweenTwoNodes: `overlayd bench --serve` on node1, `overlayd
// bench --peer <node1's subnet>` on node0: the report (bench/podlat's
// code) has TCP and UDP round trips and a stream over the overlay, pod to
// pod, and over the underlay; both sides remove their bench pods.
func TestBenchBetweenTwoNodes(t *testing.T) {
	c := startCluster(t, lab.Options{Nodes: 2, PodsPerNode: 1})
	n0, n1 := c.Nodes[0], c.Nodes[1]
	srv, err := c.StartAgent(context.Background(), n1, []string{overlaydBin, "bench", "--serve", "--subnet-file=" + n1.SubnetFile})
	if err != nil {
		t.Fatal(err)
	}
	labtest.Eventually(t, 20*time.Second, "bench server ready", func() error {
		return labtest.LogContains(srv, "serving: bench pod")
	})
	out := t.TempDir()
	ctx := labtest.Context(t, 2*time.Minute)
	cmd := netnsutil.Command(ctx, n0.NS, overlaydBin, "bench", "--subnet-file="+n0.SubnetFile, "--peer="+n1.Subnet.Lease().String(),
		"--round-trips=300", "--warmup=30", "--throughput=1s", "--out="+out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("overlayd bench: %v\n%s", err, b)
	}
	checkBenchReport(t, filepath.Join(out, report.JSONFile))
	for _, f := range []string{report.MarkdownFile, report.CSVFile, report.ChartFile} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if err := srv.Stop(syscall.SIGTERM); err != nil {
		t.Errorf("bench server: %v", err)
	}
	for _, pid := range []int{cmd.Process.Pid, srv.Pid()} {
		if left := benchLeftovers(t, pid); left != "" {
			t.Errorf("left behind by pid %d: %s", pid, left)
		}
	}
	for _, n := range c.Nodes {
		if links, _ := netnsutil.Exec(labtest.Context(t, 5*time.Second), n.NS, "ip", "-o", "link", "show", "master", "cni0"); strings.Contains(links, "ovlb") {
			t.Errorf("%s: bench veth left on cni0:\n%s", n.Name, links)
		}
	}
}

func checkBenchReport(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Agents) != 1 || rep.Agents[0].Error != "" {
		t.Fatalf("report agents: %+v", rep.Agents)
	}
	a := rep.Agents[0]
	for _, id := range []string{report.PathCrossNode, report.PathUnderlay} {
		p := a.Path(id)
		if p == nil {
			t.Errorf("no %s path in %s", id, data)
			continue
		}
		for _, proto := range []string{"tcp", "udp"} {
			if l := p.ByProtocol(proto); l == nil || l.Count+l.Lost != 300 || l.Count < 290 || l.P50US <= 0 {
				t.Errorf("%s %s: %+v", id, proto, l)
			}
		}
		if p.Throughput == nil || p.Throughput.BitsPerSecond <= 0 {
			t.Errorf("%s throughput: %+v", id, p.Throughput)
		}
	}
}

// benchLeftovers lists namespaces a bench process named after its pid.
func benchLeftovers(t *testing.T, pid int) string {
	t.Helper()
	list, _ := os.ReadDir("/run/netns")
	var left []string
	for _, e := range list {
		if strings.HasPrefix(e.Name(), fmt.Sprintf("%s%d-bench-", netnsutil.NamePrefix, pid)) {
			left = append(left, e.Name())
		}
	}
	return strings.Join(left, " ")
}
