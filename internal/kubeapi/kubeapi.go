// Package kubeapi runs a real kube-apiserver on root loopback for tests
// and benchmarks: a self-signed serving certificate, a static token for
// an admin (system:masters) and one for overlayd's service account
// (which has only what RBAC grants it), stored in an etcd the caller
// started. The binary is built by scripts/kube-apiserver.sh.
package kubeapi

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
	"time"

	"github.com/overlayd/overlayd/internal/logtest"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// The identity the DaemonSet's pods have: the manifest's ServiceAccount.
const (
	AgentNamespace      = "kube-flannel"
	AgentServiceAccount = "flannel"
)

const (
	readyTimeout = 90 * time.Second
	stopGrace    = 15 * time.Second
)

// Server is a running kube-apiserver.
type Server struct {
	URL        string // https://127.0.0.1:<port>
	Port       int
	AdminToken string
	AgentToken string
	// LogPath is the server's combined output.
	LogPath string
	dir     string
	argv    []string // binary and arguments, for Restart
	cmd     *exec.Cmd
	done    chan struct{}
}

// Binary is $OVERLAYD_KUBE_APISERVER, else where scripts/kube-apiserver.sh
// caches it; an error wrapping fs.ErrNotExist when it is not there.
func Binary() (string, error) {
	bin := os.Getenv("OVERLAYD_KUBE_APISERVER")
	if bin == "" {
		out, err := exec.Command("go", "env", "GOCACHE").Output()
		if err != nil {
			return "", fmt.Errorf("go env GOCACHE: %w", err)
		}
		bin = filepath.Join(strings.TrimSpace(string(out)), "overlayd-kube-apiserver", "kube-apiserver")
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("kube-apiserver not built (run scripts/kube-apiserver.sh): %w", err)
	}
	return bin, nil
}

// Start runs kube-apiserver against etcdURL, keeping its files in dir,
// with extraArgs appended to its command line, and waits until /readyz
// answers. Stop it with Stop.
func Start(etcdURL, dir string, extraArgs ...string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, AdminToken: randomToken(), AgentToken: randomToken(), done: make(chan struct{}),
		LogPath: filepath.Join(dir, "kube-apiserver.log")}
	if err := s.writeCredentials(); err != nil {
		return nil, err
	}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	s.URL = fmt.Sprintf("https://127.0.0.1:%d", s.Port)
	s.argv = append(append([]string{bin}, s.args(etcdURL)...), extraArgs...)
	if err := s.launch(); err != nil {
		return nil, err
	}
	if err := s.WaitReady(readyTimeout); err != nil {
		s.Stop()
		return nil, fmt.Errorf("kube-apiserver: %w\n%s", err, s.LogTail(30))
	}
	return s, nil
}

// Restart starts a stopped server again with the same command line: the
// same port, certificates and credentials.
func (s *Server) Restart() error {
	s.done = make(chan struct{})
	if err := s.launch(); err != nil {
		return err
	}
	if err := s.WaitReady(readyTimeout); err != nil {
		return fmt.Errorf("kube-apiserver after a restart: %w\n%s", err, s.LogTail(30))
	}
	return nil
}

func (s *Server) launch() error {
	logFile, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(s.argv[0], s.argv[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start kube-apiserver: %w", err)
	}
	done := s.done
	go func() { s.cmd.Wait(); logFile.Close(); close(done) }()
	return nil
}

func (s *Server) args(etcdURL string) []string {
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
func (s *Server) writeCredentials() error {
	saUser := "system:serviceaccount:" + AgentNamespace + ":" + AgentServiceAccount
	tokens := fmt.Sprintf("%s,admin,admin,system:masters\n%s,%s,overlayd-sa,\"system:serviceaccounts,system:serviceaccounts:%s\"\n",
		s.AdminToken, s.AgentToken, saUser, AgentNamespace)
	if err := os.WriteFile(filepath.Join(s.dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return fmt.Errorf("kube-apiserver token file: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	return os.WriteFile(filepath.Join(s.dir, "sa.key"), pem.EncodeToMemory(block), 0o600)
}

// WaitReady polls /readyz until it answers 200, the server exits, or
// timeout passes.
func (s *Server) WaitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(timeout)
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
	return fmt.Errorf("not ready after %s: %v", timeout, last)
}

// Stop sends SIGTERM, then SIGKILL after a grace period, and waits.
func (s *Server) Stop() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopGrace):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// Kill stops the server at once (SIGKILL) and waits.
func (s *Server) Kill() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// Config is a client config for token (the serving certificate is
// self-signed), without client-go's default throttling of 5 requests a
// second: tests and benchmarks create thousands of objects.
func (s *Server) Config(token string) *rest.Config {
	return &rest.Config{Host: s.URL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS: -1}
}

// AdminClient is a clientset with the admin token.
func (s *Server) AdminClient() (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(s.Config(s.AdminToken))
}

// WriteKubeconfig writes, into dir, a kubeconfig for token that reaches
// the API server at server (e.g. through the lab's proxy).
func WriteKubeconfig(dir, server, token string) (string, error) {
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
`, server, token)
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		return "", fmt.Errorf("write kubeconfig: %w", err)
	}
	return path, nil
}

// LogTail is the last lines of the server's log.
func (s *Server) LogTail(lines int) string { return logtest.FileTail(s.LogPath, lines) }

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
