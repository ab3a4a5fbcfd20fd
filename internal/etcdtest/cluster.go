package etcdtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// Member ports: every member has an address (and a network namespace)
// of its own, so they all use etcd's standard ports.
const (
	ClientPort = 2379
	PeerPort   = 2380
)

// MemberHost is where one member runs: a network namespace and its
// address there (a lab host, see lab.AddHost).
type MemberHost struct {
	NS string
	IP netip.Addr
}

// ClusterOptions describe a cluster.
type ClusterOptions struct {
	// Hosts: one member per host.
	Hosts []MemberHost
	// Dir holds the certificates and every member's data.
	Dir string
	// Log receives the members' output; nil discards it.
	Log io.Writer
}

// Cluster is a multi-member etcd with mutual TLS everywhere: clients and
// peers must present a certificate signed by PKI's CA.
type Cluster struct {
	PKI     PKI
	Members []*Member
	log     io.Writer
	initial string
}

// Member is one etcd process of a Cluster.
type Member struct {
	Name      string
	Host      MemberHost
	certFile  string
	keyFile   string
	dataDir   string
	cluster   *Cluster
	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
	partition bool
}

// StartClusterT starts one member per host, waits until the cluster
// answers a linearizable read, and kills every member in t.Cleanup. It
// skips the test when etcd is not installed and CI is unset.
func StartClusterT(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if _, err := Binary(); err != nil && os.Getenv("CI") == "" {
		t.Skipf("skipping: %v", err)
	}
	c := &Cluster{PKI: NewPKI(t, o.Dir, "cluster"), log: o.Log}
	var peers []string
	for i, h := range o.Hosts {
		m := &Member{Name: fmt.Sprintf("m%d", i), Host: h, cluster: c, dataDir: filepath.Join(o.Dir, fmt.Sprintf("m%d", i))}
		m.certFile, m.keyFile = c.PKI.MemberCert(t, o.Dir, m.Name, h.IP.AsSlice())
		c.Members = append(c.Members, m)
		peers = append(peers, m.Name+"="+m.peerURL())
	}
	c.initial = strings.Join(peers, ",")
	t.Cleanup(c.Stop)
	for _, m := range c.Members {
		if err := m.launch(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// Endpoints are the members' client URLs, in member order.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.ClientURL())
	}
	return eps
}

// Stop kills every member (their data stays in Dir).
func (c *Cluster) Stop() {
	for _, m := range c.Members {
		m.Kill()
	}
}

// ClientURL is https://IP:2379.
func (m *Member) ClientURL() string {
	return "https://" + netip.AddrPortFrom(m.Host.IP, ClientPort).String()
}

func (m *Member) peerURL() string {
	return "https://" + netip.AddrPortFrom(m.Host.IP, PeerPort).String()
}

func (m *Member) args() []string {
	pki := m.cluster.PKI
	return []string{
		"--name", m.Name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.ClientURL(),
		"--advertise-client-urls", m.ClientURL(),
		"--listen-peer-urls", m.peerURL(),
		"--initial-advertise-peer-urls", m.peerURL(),
		"--initial-cluster", m.cluster.initial,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", "overlayd-test",
		"--cert-file", m.certFile, "--key-file", m.keyFile,
		"--client-cert-auth", "--trusted-ca-file", pki.CAFile,
		"--peer-cert-file", m.certFile, "--peer-key-file", m.keyFile,
		"--peer-client-cert-auth", "--peer-trusted-ca-file", pki.CAFile,
		// etcd 3.5's default: a member cut off does not disrupt the
		// others by raising the term when it comes back.
		"--pre-vote",
		"--unsafe-no-fsync",
		"--log-level", "warn",
		"--logger", "zap",
	}
}

// launch starts the member's process (on its existing data, if any)
// without waiting for it to serve.
func (m *Member) launch() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil && !exited(m.done) {
		return fmt.Errorf("etcd member %s: already running", m.Name)
	}
	cmd := netnsutil.Command(context.Background(), m.Host.NS, append([]string{bin}, m.args()...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if m.cluster.log != nil {
		cmd.Stdout, cmd.Stderr = m.cluster.log, m.cluster.log
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("etcd member %s in netns %s: %w", m.Name, m.Host.NS, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	m.cmd, m.done = cmd, done
	return nil
}

// Restart starts a killed member again on its data and waits until its
// client port accepts connections.
func (m *Member) Restart(ctx context.Context) error {
	if err := m.launch(); err != nil {
		return err
	}
	return m.waitListening(ctx)
}

// Kill SIGKILLs the member and waits for it to exit.
func (m *Member) Kill() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil || exited(done) {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Running reports whether the member's process is alive.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil && !exited(m.done)
}

func (m *Member) waitListening(ctx context.Context) error {
	addr := netip.AddrPortFrom(m.Host.IP, ClientPort).String()
	for {
		if !m.Running() {
			return fmt.Errorf("etcd member %s exited during start-up (set ClusterOptions.Log to see why)", m.Name)
		}
		conn, err := dialIn(ctx, m.Host.NS, addr)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd member %s at %s not listening: %w", m.Name, addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (m *Member) partitioned() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.partition
}

func exited(done chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// Partition cuts (true) or heals (false) the member's peer traffic with
// iptables rules inside its own namespace: it stops hearing from and
// talking to the other members, so it loses quorum, while clients still
// reach it on the client port.
func (m *Member) Partition(ctx context.Context, cut bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.partition == cut {
		return nil
	}
	op := "-D"
	if cut {
		op = "-I"
	}
	// Both directions of the connections it dialed and of those dialed
	// to it: every peer packet has port 2380 on one side.
	for _, rule := range [][]string{{"INPUT", "--dport"}, {"INPUT", "--sport"}, {"OUTPUT", "--dport"}, {"OUTPUT", "--sport"}} {
		args := []string{"iptables", "-w", "5", op, rule[0], "-p", "tcp", rule[1], fmt.Sprint(PeerPort), "-j", "DROP"}
		if _, err := netnsutil.Exec(ctx, m.Host.NS, args...); err != nil {
			return fmt.Errorf("partition etcd member %s: %w", m.Name, err)
		}
	}
	m.partition = cut
	return nil
}

// ClientTLS is a client configuration trusting the cluster's CA with
// the PKI's client certificate.
func (c *Cluster) ClientTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.PKI.ClientCert, c.PKI.ClientKey)
	if err != nil {
		return nil, fmt.Errorf("client certificate %s: %w", c.PKI.ClientCert, err)
	}
	ca, err := os.ReadFile(c.PKI.CAFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("CA file %s: no certificate", c.PKI.CAFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Client opens a v3 client (from the root namespace: each connection is
// made inside the namespace of the member it goes to) on the given
// members, all of them when none is named. Close it.
func (c *Cluster) Client(members ...int) (*clientv3.Client, error) {
	if len(members) == 0 {
		for i := range c.Members {
			members = append(members, i)
		}
	}
	nsOf := map[string]string{}
	var eps []string
	for _, i := range members {
		m := c.Members[i]
		eps = append(eps, m.ClientURL())
		nsOf[netip.AddrPortFrom(m.Host.IP, ClientPort).String()] = m.Host.NS
	}
	tlsConfig, err := c.ClientTLS()
	if err != nil {
		return nil, err
	}
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		if _, rest, ok := cutScheme(addr); ok {
			addr = rest
		}
		ns, ok := nsOf[addr]
		if !ok {
			return nil, fmt.Errorf("etcd cluster client: %s is no member's client address", addr)
		}
		return dialIn(ctx, ns, addr)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: 5 * time.Second,
		TLS:         tlsConfig,
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(dial)},
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd cluster client for %s: %w", strings.Join(eps, ","), err)
	}
	return cli, nil
}

// WaitHealthy waits until a linearizable read through every running,
// non-partitioned member succeeds.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	for i, m := range c.Members {
		if !m.Running() {
			continue
		}
		if err := m.waitListening(ctx); err != nil {
			return err
		}
		if m.partitioned() {
			continue
		}
		if err := c.waitRead(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) waitRead(ctx context.Context, i int) error {
	cli, err := c.Client(i)
	if err != nil {
		return err
	}
	defer cli.Close()
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, last = cli.Get(clientv3.WithRequireLeader(rctx), "health-probe")
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd member %s not healthy: %w (last: %v)", c.Members[i].Name, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Leader returns the index of the member that is the raft leader, as
// the running members that are not partitioned see it: they must agree.
func (c *Cluster) Leader(ctx context.Context) (int, error) {
	cli, err := c.Client()
	if err != nil {
		return -1, err
	}
	defer cli.Close()
	ids := map[uint64]int{}
	var leader uint64
	var errs []error
	for i, m := range c.Members {
		if !m.Running() || m.partitioned() {
			continue
		}
		st, err := cli.Status(ctx, m.ClientURL())
		if err != nil {
			errs = append(errs, fmt.Errorf("status of %s: %w", m.Name, err))
			continue
		}
		ids[st.Header.MemberId] = i
		if leader != 0 && st.Leader != leader {
			return -1, fmt.Errorf("members disagree on the leader: %x and %x", leader, st.Leader)
		}
		leader = st.Leader
	}
	if i, ok := ids[leader]; ok && leader != 0 {
		return i, nil
	}
	return -1, fmt.Errorf("no leader among the running members: %w", errors.Join(errs...))
}

func dialIn(ctx context.Context, ns, addr string) (net.Conn, error) {
	return netnsutil.In(ns, func() (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "tcp", addr) })
}
