package csumtrigger

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// OuterChecksums counts, from tcpdump -vv, what the outer VXLAN packets
// arriving on a node's underlay carried in their UDP checksum field.
type OuterChecksums struct {
	Packets int // VXLAN packets seen
	NoSum   int // checksum 0: "no cksum" (VXLAN over IPv4 sends none)
	SumOK   int // a correct checksum
	BadSum  int // a wrong one: the corruption the bug causes
}

// Capture runs tcpdump on iface inside ns for UDP to port until Stop.
type Capture struct {
	path string
	port int
	stop func() error
}

// StartCapture starts tcpdump; the file lives in dir.
func StartCapture(ctx context.Context, ns, iface string, port int, dir string) (*Capture, error) {
	f, err := os.CreateTemp(dir, "tcpdump-*.txt")
	if err != nil {
		return nil, fmt.Errorf("capture file: %w", err)
	}
	cmd := netnsutil.Command(context.Background(), ns, "tcpdump", "-vv", "-n", "-l", "-i", iface, "udp", "dst", "port", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start tcpdump in %s: %w", ns, err)
	}
	// tcpdump says "listening on" once the capture is open.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if b, _ := os.ReadFile(f.Name()); strings.Contains(string(b), "listening on") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := &Capture{path: f.Name(), port: port}
	c.stop = func() error {
		defer f.Close()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		return nil
	}
	return c, nil
}

// Stop ends tcpdump and counts what it printed.
func (c *Capture) Stop() (OuterChecksums, error) {
	c.stop()
	b, err := os.ReadFile(c.path)
	if err != nil {
		return OuterChecksums{}, fmt.Errorf("read capture: %w", err)
	}
	return CountOuterChecksums(string(b), c.port), nil
}

// CountOuterChecksums reads tcpdump -vv lines of UDP to the VXLAN port. The
// outer UDP header line is the one with "> a.b.c.d.<port>: [": its checksum
// verdict is "[no cksum]", "[udp sum ok]" or "[bad udp cksum ...]"; lines of
// the decoded inner packet are not counted.
func CountOuterChecksums(text string, port int) OuterChecksums {
	var oc OuterChecksums
	marker := fmt.Sprintf(".%d: [", port)
	for _, line := range strings.Split(text, "\n") {
		if !strings.Contains(line, marker) {
			continue
		}
		switch {
		case strings.Contains(line, "[no cksum]"):
			oc.NoSum++
		case strings.Contains(line, "[udp sum ok]"):
			oc.SumOK++
		case strings.Contains(line, "[bad udp cksum"):
			oc.BadSum++
		default:
			continue
		}
		oc.Packets++
	}
	return oc
}
