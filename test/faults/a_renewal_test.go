package faults

// This file's name sorts first on purpose: go test starts parallel tests
// in source order, and this one waits more than a minute, so it must
// start first to run alongside the others instead of after them.

import (
	"fmt"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// earliestRenewal: the lease TTL is 24h and --subnet-lease-renew-margin
// at most 1439 minutes, so the first renewal falls due a minute after the
// lease was taken. There is no flag for a shorter TTL.
const (
	renewMarginFlag = "--subnet-lease-renew-margin=1439"
	earliestRenewal = time.Minute
)

// Series of the manager's renewal metrics.
const (
	renewedOK     = `overlayd_subnet_lease_renewals_total{result="ok"}`
	renewedError  = `overlayd_subnet_lease_renewals_total{result="error"}`
	leaseExpiryTS = "overlayd_subnet_lease_expiration_timestamp_seconds"
)

// TestRenewalDueDuringEtcdOutage: etcd is unreachable, for several
// resync intervals, when the first renewal falls due (a minute after
// start). The nodes keep running and their routes and traffic; when etcd
// is back they renew as soon as the client has reconnected (the renewal
// waits for etcd rather than failing and retrying a minute later): a renewal counted ok, the expiry moved forward, a fresh 24h
// etcd lease. Runs in parallel with other tests: it mostly waits.
func TestRenewalDueDuringEtcdOutage(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{nodes: 2, pods: 1, extra: []string{renewMarginFlag}})
	start := time.Now()
	c.waitConverged(convergeTimeout)
	before := kernelsOf(c)
	expiry := map[string]float64{}
	for _, n := range c.Nodes {
		expiry[n.Name] = metrics(t, n)[leaseExpiryTS]
	}
	time.Sleep(time.Until(start.Add(earliestRenewal - 8*time.Second)))
	c.SetEtcdReachable(false)
	time.Sleep(16 * time.Second)
	requireKernels(t, c, before, "after the renewal fell due during an etcd outage")
	c.mustPingAllNow("with etcd unreachable past the renewal")
	labtest.RequireAlive(c.t, c.Lab)
	for _, n := range c.Nodes {
		if ok := metrics(t, n)[renewedOK]; ok != 0 {
			t.Fatalf("%s renewed with etcd unreachable?", n.Name)
		}
	}
	c.SetEtcdReachable(true)
	for _, n := range c.Nodes {
		requireRenewed(t, c, n, expiry[n.Name], reconnectTimeout)
	}
	labtest.RequireAlive(c.t, c.Lab)
	c.waitConverged(convergeTimeout)
	c.mustPingAll()
}

// requireRenewed waits until n has renewed its lease: a renewal counted
// ok, the expiry moved forward, and the etcd lease has close to 24h left.
func requireRenewed(t *testing.T, c *cluster, n *lab.Node, expiryBefore float64, timeout time.Duration) {
	t.Helper()
	labtest.Eventually(t, timeout, n.Name+" renewed its lease", func() error {
		m := metrics(t, n)
		if m[renewedOK] < 1 {
			return fmt.Errorf("renewals: %v ok, %v errors", m[renewedOK], m[renewedError])
		}
		if m[leaseExpiryTS] < expiryBefore+30 {
			return fmt.Errorf("expiry %v did not move forward from %v", m[leaseExpiryTS], expiryBefore)
		}
		_, ttl, err := c.nodeLease(n)
		if err != nil {
			return err
		}
		if ttl < 24*time.Hour-20*time.Second {
			return fmt.Errorf("etcd lease TTL %s, want a fresh 24h", ttl)
		}
		return nil
	})
}
