// Package etcdtest starts a real, throwaway etcd server on loopback for
// integration tests, the demo and benchmarks. It needs the etcd binary
// (Debian's etcd-server) on PATH or in $ETCD_BIN.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Options tune the server.
type Options struct {
	// EnableV2 turns on the v2 API (etcd 3.4's --enable-v2).
	EnableV2 bool
	// ExtraArgs are appended to etcd's command line (TLS flags, ...).
	ExtraArgs []string
	// Scheme is "http" (default) or "https" for the client URL.
	Scheme string
	// Log receives etcd's stderr; nil discards it.
	Log *os.File
}

// Server is a running etcd.
type Server struct {
	cmd     *exec.Cmd
	dir     string
	ownsDir bool
	url     string
	done    chan struct{}
}

// Binary returns the etcd binary path or an error saying how to get one.
func Binary() (string, error) {
	if p := os.Getenv("ETCD_BIN"); p != "" {
		return p, nil
	}
	for _, p := range []string{"etcd", "/usr/bin/etcd", "/usr/local/bin/etcd"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", errors.New("etcd binary not found: apt-get install etcd-server, or set ETCD_BIN")
}

// Start launches etcd with its data in a fresh temporary directory and
// waits until it answers. Stop it with Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "overlayd-etcd-")
	if err != nil {
		return nil, fmt.Errorf("etcd data dir: %w", err)
	}
	s, err := startIn(ctx, bin, dir, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.ownsDir = true
	return s, nil
}

func startIn(ctx context.Context, bin, dir string, opts Options) (*Server, error) {
	clientPort, peerPort, err := freePorts()
	if err != nil {
		return nil, err
	}
	scheme := opts.Scheme
	if scheme == "" {
		scheme = "http"
	}
	clientURL := fmt.Sprintf("%s://127.0.0.1:%d", scheme, clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	args := []string{
		"--name", "overlayd-test",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", clientURL,
		"--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "overlayd-test=" + peerURL,
		"--unsafe-no-fsync",
		"--log-level", "warn",
		"--logger", "zap",
		"--enable-v2=" + strconv.FormatBool(opts.EnableV2),
	}
	args = append(args, opts.ExtraArgs...)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if opts.Log != nil {
		cmd.Stdout, cmd.Stderr = opts.Log, opts.Log
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start etcd %s: %w", bin, err)
	}
	s := &Server{cmd: cmd, dir: dir, url: clientURL, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx, peerPort); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady waits for the client port to accept connections and, for
// plain http, for /health to answer.
func (s *Server) waitReady(ctx context.Context, _ int) error {
	deadline := time.Now().Add(20 * time.Second)
	addr := s.url[len("http://"):]
	if s.url[:5] == "https" {
		addr = s.url[len("https://"):]
	}
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("etcd exited during start-up (run with Options.Log to see why)")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			conn.Close()
			if s.url[:5] == "https" || healthy(s.url) {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("etcd at %s not ready after 20s", s.url)
}

func healthy(url string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url + "/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Endpoint is the client URL, e.g. http://127.0.0.1:40123.
func (s *Server) Endpoint() string { return s.url }

// Addr is the client host:port.
func (s *Server) Addr() string {
	_, rest, _ := cutScheme(s.url)
	return rest
}

// DataDir is the server's data directory.
func (s *Server) DataDir() string { return s.dir }

// Pid is etcd's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop kills etcd, waits for it and removes its data.
func (s *Server) Stop() error {
	s.Kill()
	if s.ownsDir {
		return os.RemoveAll(s.dir)
	}
	return nil
}

// Kill stops the process but keeps the data directory (see Restart).
func (s *Server) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// Restart kills etcd and starts it again on the same data (same client
// URL is not guaranteed; read Endpoint again). Used by fault tests.
func (s *Server) Restart(ctx context.Context, opts Options) error {
	s.Kill()
	bin, err := Binary()
	if err != nil {
		return err
	}
	ns, err := startIn(ctx, bin, s.dir, opts)
	if err != nil {
		return err
	}
	owns := s.ownsDir
	*s = *ns
	s.ownsDir = owns
	return nil
}

// StartT starts etcd for a test and stops it in t.Cleanup. It skips the
// test when etcd is not installed and CI is unset.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	if _, err := Binary(); err != nil && os.Getenv("CI") == "" {
		t.Skipf("skipping: %v", err)
	}
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

func cutScheme(url string) (string, string, bool) {
	for i := 0; i+3 <= len(url); i++ {
		if url[i:i+3] == "://" {
			return url[:i], url[i+3:], true
		}
	}
	return "", url, false
}

func freePorts() (int, int, error) {
	var ports [2]int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports[0], ports[1], nil
}
