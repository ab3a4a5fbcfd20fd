package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/vxlandata"
)

// startPeers is how many peer leases the start-request test writes.
const startPeers = 1000

// TestEtcdStartRequests: an agent started over 1,000 peer leases makes at
// most five etcd requests until it is in sync (config, one lease list,
// the lease write, its TTL, the watch), counted by etcd itself (its
// grpc_server_started_total by method). Before, the start listed the
// leases three times (VTEP MAC lookup, Acquire, first snapshot).
func TestEtcdStartRequests(t *testing.T) {
	netnsutil.RequireRoot(t)
	etcd := etcdtest.StartT(t, etcdtest.Options{})
	l := lab.NewT(t, lab.Options{Nodes: 1, EtcdEndpoint: etcd.Endpoint(), Network: netip.MustParsePrefix("10.0.0.0/8"), CNIPlugin: overlaydBin})
	ctx := labtest.Context(t, 2*time.Minute)
	if err := l.WriteConfig(ctx, `{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}`); err != nil {
		t.Fatal(err)
	}
	writePeerLeases(ctx, t, l, startPeers)
	before := etcdRequests(ctx, t, etcd.Endpoint())
	n := l.Nodes[0]
	if _, err := l.StartAgent(ctx, n, lab.OverlaydArgs(overlaydBin, l, n)); err != nil {
		t.Fatal(err)
	}
	labtest.Eventually(t, time.Minute, "in sync with every peer", func() error {
		s, err := labtest.Status(ctx, n)
		if err != nil || s.Sync == nil || !s.Sync.InSync || s.Sync.Counts.PeersProgrammed != startPeers {
			return fmt.Errorf("not yet (%v)", err)
		}
		return nil
	})
	after := etcdRequests(ctx, t, etcd.Endpoint())
	total, detail := 0, []string{}
	for method, v := range after {
		if d := v - before[method]; d > 0 {
			total += d
			detail = append(detail, fmt.Sprintf("%s=%d", method, d))
		}
	}
	t.Logf("etcd requests from start to in sync with %d leases: %d (%s)", startPeers, total, strings.Join(detail, " "))
	if after["Range"]-before["Range"] > 2 || total > 5 {
		t.Errorf("%d etcd requests at start (%s), want at most 5 with one lease list", total, strings.Join(detail, " "))
	}
}

// writePeerLeases puts n peer leases (no TTL) in batches.
func writePeerLeases(ctx context.Context, t *testing.T, l *lab.Lab, n int) {
	t.Helper()
	cli := labtest.EtcdClient(t, l)
	var ops []clientv3.Op
	for i := 1; i <= n; i++ {
		s := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
		data, err := vxlandata.Marshal(vxlandata.Data{VNI: 1, VtepMAC: []byte{2, 0, 0, 0, byte(i >> 8), byte(i)}}, true)
		if err != nil {
			t.Fatal(err)
		}
		v, err := subnet.MarshalLeaseAttrs(subnet.LeaseAttrs{PublicIP: netip.AddrFrom4([4]byte{198, 51, 100, byte(i%250 + 1)}),
			BackendType: subnet.BackendVXLAN, BackendData: data}, subnet.FormV028)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, clientv3.OpPut(subnet.LeaseKey(subnet.DefaultPrefix, s), string(v)))
		if len(ops) == 100 || i == n {
			if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
				t.Fatal(err)
			}
			ops = ops[:0]
		}
	}
}

// etcdRequests reads etcd's own count of gRPC calls started, by method.
func etcdRequests(ctx context.Context, t *testing.T, endpoint string) map[string]int {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "grpc_server_started_total{") {
			continue
		}
		_, rest, _ := strings.Cut(line, `grpc_method="`)
		method, _, _ := strings.Cut(rest, `"`)
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			out[method] += int(v)
		}
	}
	return out
}
