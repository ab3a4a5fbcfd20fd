package publiccloud

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
)

const (
	// upTimeout bounds a node's start; convergeTimeout a change spreading.
	upTimeout       = 45 * time.Second
	convergeTimeout = 20 * time.Second
	// metricsURL is overlayd's default --metrics-addr, inside the node.
	metricsURL = "http://127.0.0.1:9473"
)

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startCluster builds the lab, writes the network config, runs overlayd
// (lab.OverlaydArgs plus extra) on every node, waits until each is ready,
// adds the pods and checks that every pod reaches every other.
func startCluster(t *testing.T, opts lab.Options, extra ...string) *lab.Lab {
	t.Helper()
	l := lab.NewT(t, opts)
	ctx := testContext(t, upTimeout)
	if err := l.WriteConfig(ctx, l.ConfigJSON()); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes {
		startAgent(t, l, n, extra...)
	}
	for _, n := range l.Nodes {
		waitUp(t, ctx, l, n)
		if err := l.AddPods(ctx, n); err != nil {
			t.Fatalf("add pods on %s: %v", n.Name, err)
		}
	}
	pingAll(t, l)
	return l
}

func startAgent(t *testing.T, l *lab.Lab, n *lab.Node, extra ...string) *lab.Agent {
	t.Helper()
	a, err := l.StartAgent(context.Background(), n, lab.OverlaydArgs(overlaydBin, l, n, extra...))
	if err != nil {
		t.Fatalf("start overlayd on %s: %v", n.Name, err)
	}
	return a
}

// waitUp waits for n's /readyz and reads its subnet file.
func waitUp(t *testing.T, ctx context.Context, l *lab.Lab, n *lab.Node) {
	t.Helper()
	if err := l.WaitReady(ctx, n); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WaitSubnetFile(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// pingAll pings every pod from every other, retrying while routes converge.
func pingAll(t *testing.T, l *lab.Lab) {
	t.Helper()
	m, err := l.PingAllRetry(testContext(t, convergeTimeout), 20, 500*time.Millisecond)
	if err != nil {
		t.Fatalf("%v\n%s", err, m)
	}
}

// waitFor polls cond every 200ms until it holds or timeout passes; the
// failure shows cond's last description of the state.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, still not %s; last state:\n%s", timeout, what, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// statusDoc is the part of overlayd's /status these tests read.
type statusDoc struct {
	Ready    bool `json:"ready"`
	Underlay struct {
		Iface           string `json:"iface"`
		Bind            string `json:"bind"`
		Advertise       string `json:"advertise"`
		AdvertiseOnHost bool   `json:"advertiseOnHost"`
	} `json:"underlay"`
	Device *struct {
		TxChecksumOffload *struct {
			On   bool   `json:"on"`
			Mode string `json:"mode"`
			Why  string `json:"why"`
		} `json:"txChecksumOffload"`
	} `json:"device"`
	Sync *struct {
		Peers []struct {
			Subnet   string `json:"subnet"`
			PublicIP string `json:"publicIP"`
			Dst      string `json:"dst"`
		} `json:"peers"`
	} `json:"sync"`
}

func getStatus(t *testing.T, ctx context.Context, n *lab.Node) statusDoc {
	t.Helper()
	code, body, err := lab.GetIn(ctx, n.NS, metricsURL+"/status")
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s /status: %d %v\n%s", n.Name, code, err, body)
	}
	var doc statusDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("%s /status is not the expected JSON: %v\n%s", n.Name, err, body)
	}
	return doc
}

// metricValue reads one series, e.g.
// `overlayd_samesite_answers_received_total{result="wrong_identity"}`,
// from n's /metrics.
func metricValue(ctx context.Context, n *lab.Node, series string) (float64, error) {
	code, body, err := lab.GetIn(ctx, n.NS, metricsURL+"/metrics")
	if err != nil || code != http.StatusOK {
		return 0, fmt.Errorf("%s /metrics: %d %v", n.Name, code, err)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && name == series {
			return strconv.ParseFloat(value, 64)
		}
	}
	return 0, fmt.Errorf("%s /metrics has no series %s", n.Name, series)
}

// fdbDsts maps each permanent FDB entry's MAC on flannel.1 to its dst.
func fdbDsts(t *testing.T, ctx context.Context, n *lab.Node) map[string]string {
	t.Helper()
	out, err := netnsutil.Exec(ctx, n.NS, "bridge", "fdb", "show", "dev", lab.FlannelDevice)
	if err != nil {
		t.Fatal(err)
	}
	dsts := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "dst" {
			dsts[f[0]] = f[2]
		}
	}
	return dsts
}

// vtepMAC is the VTEP MAC in n's lease.
func vtepMAC(t *testing.T, ctx context.Context, l *lab.Lab, n *lab.Node) string {
	t.Helper()
	attrs, err := l.NodeLease(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	mac, err := lab.VtepMAC(attrs)
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// rawLease is n's lease value exactly as stored in etcd.
func rawLease(t *testing.T, ctx context.Context, l *lab.Lab, n *lab.Node) []byte {
	t.Helper()
	c, err := l.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := subnet.LeaseKey(subnet.DefaultPrefix, n.Subnet.Lease())
	resp, err := c.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %v (%d keys)", key, err, len(resp.Kvs))
	}
	return resp.Kvs[0].Value
}
