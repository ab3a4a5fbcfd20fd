package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SubnetEnv is what the lab needs from a node's subnet file
// (FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ).
type SubnetEnv struct {
	Network netip.Prefix
	// Subnet is FLANNEL_SUBNET as written: the lease's first address with
	// the lease length, e.g. 10.244.5.1/24.
	Subnet netip.Prefix
	MTU    int
	IPMasq bool
}

// Gateway is the cni0 address: FLANNEL_SUBNET's address.
func (e SubnetEnv) Gateway() netip.Addr { return e.Subnet.Addr() }

// Lease is the leased subnet, e.g. 10.244.5.0/24.
func (e SubnetEnv) Lease() netip.Prefix { return e.Subnet.Masked() }

// String renders the file as flanneld writes it.
func (e SubnetEnv) String() string {
	return fmt.Sprintf("FLANNEL_NETWORK=%s\nFLANNEL_SUBNET=%s\nFLANNEL_MTU=%d\nFLANNEL_IPMASQ=%t\n",
		e.Network, e.Subnet, e.MTU, e.IPMasq)
}

// ParseSubnetEnv reads KEY=VALUE lines; NETWORK, SUBNET and MTU are
// required, other keys are ignored.
func ParseSubnetEnv(data []byte) (SubnetEnv, error) {
	vars := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return SubnetEnv{}, fmt.Errorf("subnet file: line %q is not KEY=VALUE", line)
		}
		vars[key] = strings.Trim(val, `"'`)
	}
	var e SubnetEnv
	var err error
	if e.Network, err = requirePrefix(vars, "FLANNEL_NETWORK"); err != nil {
		return SubnetEnv{}, err
	}
	if e.Subnet, err = requirePrefix(vars, "FLANNEL_SUBNET"); err != nil {
		return SubnetEnv{}, err
	}
	mtu, ok := vars["FLANNEL_MTU"]
	if !ok {
		return SubnetEnv{}, errors.New("subnet file: FLANNEL_MTU is missing")
	}
	if e.MTU, err = strconv.Atoi(mtu); err != nil || e.MTU < 68 {
		return SubnetEnv{}, fmt.Errorf("subnet file: FLANNEL_MTU %q is not an MTU", mtu)
	}
	if masq, ok := vars["FLANNEL_IPMASQ"]; ok {
		if e.IPMasq, err = strconv.ParseBool(masq); err != nil {
			return SubnetEnv{}, fmt.Errorf("subnet file: FLANNEL_IPMASQ %q is not a boolean", masq)
		}
	}
	return e, nil
}

func requirePrefix(vars map[string]string, key string) (netip.Prefix, error) {
	val, ok := vars[key]
	if !ok {
		return netip.Prefix{}, fmt.Errorf("subnet file: %s is missing", key)
	}
	p, err := netip.ParsePrefix(val)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("subnet file: %s %q is not an IPv4 CIDR", key, val)
	}
	return p, nil
}

// ReadSubnetEnv reads and parses a subnet file.
func ReadSubnetEnv(path string) (SubnetEnv, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return SubnetEnv{}, fmt.Errorf("read subnet file: %w", err)
	}
	e, err := ParseSubnetEnv(data)
	if err != nil {
		return SubnetEnv{}, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

// WriteSubnetFile writes e to n's subnet file, as an agent would; tests
// use it to add pods without running one.
func (n *Node) WriteSubnetFile(e SubnetEnv) error {
	if err := os.MkdirAll(filepath.Dir(n.SubnetFile), 0o755); err != nil {
		return fmt.Errorf("write subnet file of %s: %w", n.Name, err)
	}
	if err := os.WriteFile(n.SubnetFile, []byte(e.String()), 0o644); err != nil {
		return fmt.Errorf("write subnet file of %s: %w", n.Name, err)
	}
	return nil
}

const subnetFilePoll = 50 * time.Millisecond

// WaitSubnetFile waits until n's subnet file exists and parses, records it
// in n.Subnet and returns it. It fails early, with the end of the agent's
// log, when n's latest agent exits first. A file left by an earlier agent
// counts (flanneld never deletes it either): remove it first to wait for
// a fresh one.
func (l *Lab) WaitSubnetFile(ctx context.Context, n *Node) (SubnetEnv, error) {
	tick := time.NewTicker(subnetFilePoll)
	defer tick.Stop()
	var lastErr error
	for {
		e, err := ReadSubnetEnv(n.SubnetFile)
		if err == nil {
			n.Subnet = e
			return e, nil
		}
		lastErr = err
		if a := l.Agent(n); a != nil && a.Exited() {
			return SubnetEnv{}, fmt.Errorf("node %s: agent exited (%v) before writing %s; log tail:\n%s",
				n.Name, a.Wait(), n.SubnetFile, a.LogTail(20))
		}
		select {
		case <-ctx.Done():
			if errors.Is(lastErr, fs.ErrNotExist) {
				lastErr = errors.New("file not written")
			}
			return SubnetEnv{}, fmt.Errorf("node %s: wait for %s: %w (last: %v)", n.Name, n.SubnetFile, ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}
