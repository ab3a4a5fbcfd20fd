package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// SubnetEnv is what the lab needs from a node's subnet file
// (FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_NETWORK,
// FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ).
type SubnetEnv struct {
	Network netip.Prefix
	// Subnet is FLANNEL_SUBNET as written: the lease's first address with
	// the lease length, e.g. 10.244.5.1/24. Invalid in an IPv6-only file.
	Subnet netip.Prefix
	// IPv6Network and IPv6Subnet are the IPv6 pair (IPv6Subnet as
	// written, e.g. 2001:db8:244:5::1/64), invalid without IPv6.
	IPv6Network netip.Prefix
	IPv6Subnet  netip.Prefix
	MTU         int
	IPMasq      bool
}

// Lease6 is the leased IPv6 subnet, e.g. 2001:db8:244:5::/64.
func (e SubnetEnv) Lease6() netip.Prefix { return e.IPv6Subnet.Masked() }

// Gateway is the cni0 address: FLANNEL_SUBNET's address.
func (e SubnetEnv) Gateway() netip.Addr { return e.Subnet.Addr() }

// Lease is the leased subnet, e.g. 10.244.5.0/24.
func (e SubnetEnv) Lease() netip.Prefix { return e.Subnet.Masked() }

// String renders the file as flanneld writes it.
func (e SubnetEnv) String() string {
	var s string
	if e.Subnet.IsValid() {
		s = fmt.Sprintf("FLANNEL_NETWORK=%s\nFLANNEL_SUBNET=%s\n", e.Network, e.Subnet)
	}
	if e.IPv6Subnet.IsValid() {
		s += fmt.Sprintf("FLANNEL_IPV6_NETWORK=%s\nFLANNEL_IPV6_SUBNET=%s\n", e.IPv6Network, e.IPv6Subnet)
	}
	return s + fmt.Sprintf("FLANNEL_MTU=%d\nFLANNEL_IPMASQ=%t\n", e.MTU, e.IPMasq)
}

// ParseSubnetEnv parses a subnet file with the daemon's own reader
// (subnet.ParseSubnetFile); NETWORK, SUBNET and MTU are required.
func ParseSubnetEnv(data []byte) (SubnetEnv, error) {
	env, err := subnet.ParseSubnetFile(data)
	if err != nil {
		return SubnetEnv{}, fmt.Errorf("subnet file: %w", err)
	}
	return fromSubnetFile(env)
}

// fromSubnetFile keeps what the lab needs of a parsed file, requiring
// NETWORK and SUBNET (or, IPv6-only, their IPv6 pair) and MTU.
func fromSubnetFile(env subnet.SubnetEnv) (SubnetEnv, error) {
	only6 := !env.Network.IsValid() && !env.Subnet.IsValid() && env.IPv6Subnet.IsValid()
	for _, req := range []struct {
		key     string
		missing bool
	}{
		{"FLANNEL_NETWORK", !only6 && !env.Network.IsValid()},
		{"FLANNEL_SUBNET", !only6 && !env.Subnet.IsValid()},
		{"FLANNEL_IPV6_NETWORK", env.IPv6Subnet.IsValid() && !env.IPv6Network.IsValid()},
		{"FLANNEL_MTU", env.MTU == 0},
	} {
		if req.missing {
			return SubnetEnv{}, fmt.Errorf("subnet file: %s is missing", req.key)
		}
	}
	out := SubnetEnv{Network: env.Network, MTU: env.MTU, IPMasq: env.IPMasq}
	if env.Subnet.IsValid() {
		out.Subnet = netip.PrefixFrom(env.Subnet.Addr().Next(), env.Subnet.Bits())
	}
	if env.IPv6Subnet.IsValid() { // the IPv6 pair counts only whole
		out.IPv6Network = env.IPv6Network
		out.IPv6Subnet = netip.PrefixFrom(env.IPv6Subnet.Addr().Next(), env.IPv6Subnet.Bits())
	}
	return out, nil
}

// ReadSubnetEnv reads and parses a subnet file (see ParseSubnetEnv).
func ReadSubnetEnv(path string) (SubnetEnv, error) {
	env, err := subnet.ReadSubnetFile(path)
	if err != nil {
		return SubnetEnv{}, err
	}
	e, err := fromSubnetFile(env)
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
