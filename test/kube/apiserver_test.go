package kube

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/overlayd/overlayd/internal/kubeapi"
)

// The identity the DaemonSet's pods have: the manifest's ServiceAccount.
const (
	agentNamespace      = kubeapi.AgentNamespace
	agentServiceAccount = kubeapi.AgentServiceAccount
)

// apiServer is a kube-apiserver on root loopback (package kubeapi).
type apiServer struct{ *kubeapi.Server }

// apiServerBinary skips the test when kube-apiserver is not built, except
// in CI, where that is a failure.
func apiServerBinary(t *testing.T) {
	t.Helper()
	if _, err := kubeapi.Binary(); err != nil {
		if errors.Is(err, fs.ErrNotExist) && os.Getenv("CI") != "true" {
			t.Skipf("%v (.ci/run builds it)", err)
		}
		t.Fatal(err)
	}
}

// startAPIServer runs kube-apiserver against etcdURL, with extraArgs
// appended to its command line, until the test ends (it is stopped in
// t.Cleanup, so before an etcd started earlier).
func startAPIServer(t *testing.T, etcdURL string, extraArgs ...string) *apiServer {
	t.Helper()
	s, err := kubeapi.Start(etcdURL, t.TempDir(), extraArgs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("kube-apiserver log (%s), last lines:\n%s", s.LogPath, s.LogTail(30))
		}
	})
	return &apiServer{s}
}

// restart starts a stopped kube-apiserver again with the same command line.
func (s *apiServer) restart(t *testing.T) {
	t.Helper()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
}

func (s *apiServer) adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, err := s.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// writeKubeconfig writes a kubeconfig for the overlayd service account
// that reaches the API server at server (e.g. through the lab's proxy).
func (s *apiServer) writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	path, err := kubeapi.WriteKubeconfig(t.TempDir(), server, s.AgentToken)
	if err != nil {
		t.Fatal(err)
	}
	return path
}
