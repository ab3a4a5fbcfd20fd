package hostile

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// leaseTTL is the short lease the fencing test gives its agents
// (--subnet-lease-ttl; the renewal falls due a third of it before expiry).
const leaseTTL = 15 * time.Second

const expiredGauge = "overlayd_subnet_lease_expired"

// TestFencingExpiredLeaseDuringEtcdOutage: etcd is stopped for longer
// than the nodes' leases have left. Each node sees its lease expire on
// its own clock: /readyz turns 503 naming the expired lease, the gauge
// is 1 and one ERROR line says so; the kernel entries stay, so the pods
// keep pinging each other. Once etcd is back the leases are renewed and
// the nodes are ready again. On today's main /readyz stays 200 throughout.
func TestFencingExpiredLeaseDuringEtcdOutage(t *testing.T) {
	c := newCluster(t, lab.Options{Nodes: 2, PodsPerNode: 1})
	c.startAll("--subnet-lease-ttl=" + leaseTTL.String())
	c.mustPingAll("at start")

	c.etcd.Kill() // data kept: Restart brings the same keys back
	outage := time.Now()
	for _, n := range c.Nodes {
		labtest.Eventually(t, leaseTTL+20*time.Second, n.Name+" fenced", func() error {
			code, body, err := c.readyz(n)
			if err != nil {
				return err
			}
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "lease expired") {
				return fmt.Errorf("/readyz %d %q", code, body)
			}
			return nil
		})
	}
	t.Logf("fenced %s after etcd stopped (lease TTL %s)", time.Since(outage).Round(time.Second), leaseTTL)
	c.mustPingAll("with the leases expired")
	labtest.RequireAlive(c.t, c.Lab, c.Nodes...)
	for _, n := range c.Nodes {
		if v := labtest.Metric(t, n, expiredGauge); v != 1 {
			t.Errorf("%s: %s = %v, want 1", n.Name, expiredGauge, v)
		}
		if err := labtest.LogContains(c.Agent(n), "level=ERROR", "our lease expired without a successful renewal"); err != nil {
			t.Error(err)
		}
		if doc := labtest.MustStatus(t, n); doc.Ready || doc.Lease == nil || !doc.Lease.Expired {
			t.Errorf("%s: /status ready %v lease %+v, want not ready with the lease expired", n.Name, doc.Ready, doc.Lease)
		}
	}

	if err := c.etcd.Restart(labtest.Context(t, 30*time.Second), etcdtestOptions()); err != nil {
		t.Fatalf("restart etcd: %v", err)
	}
	if err := c.SetEtcdEndpoint(c.etcd.Endpoint()); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		labtest.Eventually(t, reconnectTimeout, n.Name+" ready again", func() error {
			code, body, err := c.readyz(n)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("/readyz %d %q", code, body)
			}
			return nil
		})
		if v := labtest.Metric(t, n, expiredGauge); v != 0 {
			t.Errorf("%s: %s = %v after renewal, want 0", n.Name, expiredGauge, v)
		}
	}
	labtest.RequireAlive(c.t, c.Lab, c.Nodes...)
	c.mustPingAll("after etcd came back")
}
