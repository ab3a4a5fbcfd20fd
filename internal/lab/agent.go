package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/overlayd/overlayd/internal/logtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
	"github.com/overlayd/overlayd/subnet"
)

// HealthzPort is where OverlaydArgs makes each agent serve /healthz and
// /readyz, on the node's underlay address inside its namespace.
const HealthzPort = 9253

// stopGrace is how long Stop waits before falling back to SIGKILL.
const stopGrace = 10 * time.Second

// Agent is a process running inside a node namespace in its own process
// group. It lives until Stop, Kill or Lab.Close, not bound to a context.
type Agent struct {
	Node    *Node
	Argv    []string
	LogPath string

	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's result, set before done closes
}

// StartAgent runs argv inside n's namespace (ip netns exec), appending its
// stdout and stderr to <node dir>/agent.log. The process gets its own
// process group, SIGKILL when this process dies, and the node's own
// /etc/machine-id (nodes are separate machines, not clones).
func (l *Lab) StartAgent(ctx context.Context, n *Node, argv []string) (*Agent, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("start agent on %s: empty command line", n.Name)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start agent on %s: %w", n.Name, err)
	}
	logPath := filepath.Join(n.Dir, "agent.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start agent on %s: %w", n.Name, err)
	}
	fmt.Fprintf(logFile, "=== lab: %s starting in netns %s: %s\n", time.Now().Format(time.RFC3339Nano), n.NS, strings.Join(argv, " "))
	cmd := netnsutil.Command(context.Background(), n.NS, withMachineID(n, argv)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	a := &Agent{Node: n, Argv: argv, LogPath: logPath, cmd: cmd, done: make(chan struct{})}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		logFile.Close()
		return nil, fmt.Errorf("start agent on %s: lab is closed", n.Name)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start agent on %s: %s: %w", n.Name, argv[0], err)
	}
	go func() {
		a.err = cmd.Wait()
		logFile.Close()
		close(a.done)
	}()
	l.agents = append(l.agents, a)
	n.agent = a
	l.log.Debug("agent started", "node", n.Name, "pid", cmd.Process.Pid, "argv", argv)
	return a, nil
}

// Pid is the agent's process id (also its process group id).
func (a *Agent) Pid() int { return a.cmd.Process.Pid }

// Done is closed when the process has exited.
func (a *Agent) Done() <-chan struct{} { return a.done }

// Exited reports whether the process has exited.
func (a *Agent) Exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the agent's process group without waiting.
func (a *Agent) Signal(sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("signal agent on %s: %v is not a syscall.Signal", a.Node.Name, sig)
	}
	if a.Exited() {
		return nil
	}
	if err := syscall.Kill(-a.Pid(), s); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal agent on %s (pgid %d) with %v: %w", a.Node.Name, a.Pid(), sig, err)
	}
	return nil
}

// Stop sends sig to the process group and waits for the exit, falling
// back to SIGKILL after 10s. It returns the exit error (nil for exit 0).
func (a *Agent) Stop(sig os.Signal) error {
	if err := a.Signal(sig); err != nil {
		return err
	}
	select {
	case <-a.done:
	case <-time.After(stopGrace):
		a.Kill()
		return fmt.Errorf("agent on %s ignored %v for %s; killed", a.Node.Name, sig, stopGrace)
	}
	return a.err
}

// Kill sends SIGKILL to the process group and waits for the exit.
func (a *Agent) Kill() {
	a.Signal(syscall.SIGKILL)
	<-a.done
}

// Wait waits for the exit and returns the exit error (nil for exit 0).
func (a *Agent) Wait() error {
	<-a.done
	return a.err
}

// LogTail returns the last lines of the agent's log (the whole node log,
// which earlier agents on the node appended to as well).
func (a *Agent) LogTail(lines int) string { return logtest.FileTail(a.LogPath, lines) }

// Agent returns the latest agent started on n, or nil.
func (l *Lab) Agent(n *Node) *Agent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return n.agent
}

// OverlaydArgs is the standard overlayd command line for node n: etcd
// through the proxy, --iface=ul0, --public-ip (the NAT address on NAT),
// the node's subnet file, --ip-masq, and health on the underlay address.
func OverlaydArgs(bin string, l *Lab, n *Node, extra ...string) []string {
	return agentArgs(bin, l, n, HealthzPort, extra)
}

// agentArgs is the command line overlayd and flanneld share on node n,
// with health on the underlay address at healthzPort.
func agentArgs(bin string, l *Lab, n *Node, healthzPort int, extra []string) []string {
	args := []string{
		bin,
		"--etcd-endpoints=" + l.EtcdURL,
		"--etcd-prefix=" + subnet.DefaultPrefix,
		"--iface=" + n.Iface,
	}
	if n.PublicIP.Is4() {
		args = append(args, "--public-ip="+n.PublicIP.String())
	}
	if n.UnderlayIP6.IsValid() {
		args = append(args, "--public-ipv6="+n.UnderlayIP6.String())
	}
	args = append(args,
		"--subnet-file="+n.SubnetFile,
		"--ip-masq",
		"--healthz-ip="+n.UnderlayIP.String(),
		"--healthz-port="+strconv.Itoa(healthzPort),
	)
	return append(args, extra...)
}

// HealthzURL is the base URL of n's agent health server, reachable from
// inside n's namespace (see HTTPClient).
func (n *Node) HealthzURL() string {
	return fmt.Sprintf("http://%s", netip.AddrPortFrom(n.UnderlayIP, HealthzPort))
}
