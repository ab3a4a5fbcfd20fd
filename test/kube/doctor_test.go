package kube

import (
	"strings"
	"testing"

	"github.com/overlayd/overlayd/doctor"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// TestDoctorReadsTheKubernetesAPI: in kube mode, `overlayd doctor` reads
// the datastore as the daemon does (the Nodes through the API server, the
// network config from --net-config-path): with the API server reachable
// the datastore checks pass and count the peers' leases; with it cut off,
// doctor names the Kubernetes API and exits with failures.
func TestDoctorReadsTheKubernetesAPI(t *testing.T) {
	c := startKubeCluster(t, lab.Options{Nodes: 2})
	for i, n := range c.Nodes {
		c.createNode(n.Name, podCIDR(i), nil)
		c.start(n, nil)
	}
	for _, n := range c.Nodes {
		c.waitUp(n)
	}
	n := c.Nodes[0]
	rep, _ := c.runDoctor(t, n)
	if res, ok := rep.Find("datastore", "reachable"); !ok || res.Status != doctor.OK || !strings.Contains(res.Detail, "2 leases") {
		t.Fatalf("datastore/reachable with the API server up: %+v (found %v)", res, ok)
	}
	if res, ok := rep.Find("datastore", "subnet pool"); !ok || res.Status == doctor.Fail {
		t.Errorf("datastore/subnet pool: %+v (found %v)", res, ok)
	}
	c.proxy.SetReachable(false)
	defer c.proxy.SetReachable(true)
	rep, code := c.runDoctor(t, n)
	res, ok := rep.Find("datastore", "reachable")
	if !ok || res.Status != doctor.Fail || !strings.Contains(res.Detail, "Kubernetes API") || code != doctor.ExitFailures {
		t.Fatalf("datastore/reachable with the API server cut off: %+v (found %v), exit %d", res, ok, code)
	}
}

// runDoctor runs doctor in kube mode inside n's namespace, as an operator
// would in the DaemonSet's pod, and returns its report and exit code.
func (c *kubeCluster) runDoctor(t *testing.T, n *lab.Node) (doctor.Report, int) {
	t.Helper()
	return labtest.RunDoctor(t, n.NS, []string{overlaydBin, "doctor", "--json", "--timeout=2s",
		"--kube-subnet-mgr", "--kubeconfig-file=" + c.kubeconfig, "--net-config-path=" + c.netConf,
		"--subnet-file=" + n.SubnetFile, "--cni-conf-dir=", "--metrics-addr="})
}
