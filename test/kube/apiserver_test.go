package kube

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// The identity the DaemonSet's pods have: the manifest's ServiceAccount.
const (
	agentNamespace      = "kube-flannel"
	agentServiceAccount = "flannel"
)

const (
	apiServerReadyTimeout = 90 * time.Second
	apiServerStopGrace    = 15 * time.Second
)

// apiServer is a kube-apiserver on root loopback, with a static token for
// an admin (system:masters) and one for the overlayd service account,
// which has only the permissions RBAC grants it.
type apiServer struct {
	URL        string // https://127.0.0.1:<port>
	Port       int
	AdminToken string
	AgentToken string
	dir        string
	cmd        *exec.Cmd
	done       chan struct{}
}

// apiServerBinary is $OVERLAYD_KUBE_APISERVER, else where
// scripts/kube-apiserver.sh caches it; the test skips when it is missing.
func apiServerBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("OVERLAYD_KUBE_APISERVER")
	if bin == "" {
		out, err := exec.Command("go", "env", "GOCACHE").Output()
		if err != nil {
			t.Fatalf("go env GOCACHE: %v", err)
		}
		bin = filepath.Join(strings.TrimSpace(string(out)), "overlayd-kube-apiserver", "kube-apiserver")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("kube-apiserver not built (%v): run scripts/kube-apiserver.sh first (.ci/run does)", err)
	}
	return bin
}

// startAPIServer runs kube-apiserver against etcdURL, with extraArgs
// appended to its command line, until the test ends (it is stopped in
// t.Cleanup, so before an etcd started earlier).
func startAPIServer(t *testing.T, etcdURL string, extraArgs ...string) *apiServer {
	t.Helper()
	bin := apiServerBinary(t)
	dir := t.TempDir()
	s := &apiServer{dir: dir, AdminToken: randomToken(), AgentToken: randomToken(), done: make(chan struct{})}
	if err := s.writeCredentials(); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s.Port, s.URL = port, fmt.Sprintf("https://127.0.0.1:%d", port)
	logFile, err := os.Create(filepath.Join(dir, "kube-apiserver.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, append(s.args(etcdURL), extraArgs...)...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start kube-apiserver: %v", err)
	}
	go func() { s.cmd.Wait(); logFile.Close(); close(s.done) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("kube-apiserver log (%s), last lines:\n%s", logFile.Name(), tail(logFile.Name(), 30))
		}
	})
	if err := s.waitReady(); err != nil {
		t.Fatalf("kube-apiserver: %v\n%s", err, tail(logFile.Name(), 30))
	}
	return s
}

func (s *apiServer) args(etcdURL string) []string {
	return []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", s.Port),
		"--cert-dir=" + filepath.Join(s.dir, "certs"), // a self-signed serving cert
		"--token-auth-file=" + filepath.Join(s.dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + filepath.Join(s.dir, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(s.dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--enable-priority-and-fairness=false",
	}
}

// writeCredentials writes the token file and the service account key.
func (s *apiServer) writeCredentials() error {
	saUser := "system:serviceaccount:" + agentNamespace + ":" + agentServiceAccount
	tokens := fmt.Sprintf("%s,admin,admin,system:masters\n%s,%s,overlayd-sa,\"system:serviceaccounts,system:serviceaccounts:%s\"\n",
		s.AdminToken, s.AgentToken, saUser, agentNamespace)
	if err := os.WriteFile(filepath.Join(s.dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	return os.WriteFile(filepath.Join(s.dir, "sa.key"), pem.EncodeToMemory(block), 0o600)
}

func (s *apiServer) waitReady() error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(apiServerReadyTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return errors.New("exited before it was ready")
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+s.AdminToken)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/readyz: %s", resp.Status)
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %v", apiServerReadyTimeout, last)
}

// stop sends SIGTERM, then SIGKILL after a grace period.
func (s *apiServer) stop() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(apiServerStopGrace):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// restConfig is a client config for token at url (the serving
// certificate is self-signed).
func restConfig(url, token string) *rest.Config {
	return &rest.Config{Host: url, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
}

func (s *apiServer) adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(restConfig(s.URL, s.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// writeKubeconfig writes a kubeconfig for the overlayd service account
// that reaches the API server at server (e.g. through the lab's proxy).
func (s *apiServer) writeKubeconfig(t *testing.T, server string) string {
	t.Helper()
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: overlayd
  user:
    token: %s
contexts:
- name: test
  context:
    cluster: test
    user: overlayd
current-context: test
`, server, s.AgentToken)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
