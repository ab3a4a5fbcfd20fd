package subnet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultSubnetFile is flanneld's default --subnet-file.
const DefaultSubnetFile = "/run/flannel/subnet.env"

// Subnet file keys, in the order flanneld writes them.
const (
	envNetwork     = "FLANNEL_NETWORK"
	envSubnet      = "FLANNEL_SUBNET"
	envIPv6Network = "FLANNEL_IPV6_NETWORK"
	envIPv6Subnet  = "FLANNEL_IPV6_SUBNET"
	envMTU         = "FLANNEL_MTU"
	envIPMasq      = "FLANNEL_IPMASQ"
)

// SubnetEnv is the content of the subnet file. Subnet and IPv6Subnet are
// lease networks (10.5.34.0/24); the file holds their first address
// (FLANNEL_SUBNET=10.5.34.1/24). An invalid prefix is absent from the file.
type SubnetEnv struct {
	Network     netip.Prefix
	Subnet      netip.Prefix
	MTU         int
	IPMasq      bool
	IPv6Network netip.Prefix
	IPv6Subnet  netip.Prefix
}

// Format renders the file exactly as flanneld does: the IPv4 pair, the
// IPv6 pair (when set), then MTU and IPMASQ.
func (e SubnetEnv) Format() []byte {
	var b bytes.Buffer
	if e.Network.IsValid() && e.Subnet.IsValid() {
		fmt.Fprintf(&b, "%s=%s\n", envNetwork, e.Network)
		fmt.Fprintf(&b, "%s=%s\n", envSubnet, firstHost(e.Subnet))
	}
	if e.IPv6Network.IsValid() && e.IPv6Subnet.IsValid() {
		fmt.Fprintf(&b, "%s=%s\n", envIPv6Network, e.IPv6Network)
		fmt.Fprintf(&b, "%s=%s\n", envIPv6Subnet, firstHost(e.IPv6Subnet))
	}
	fmt.Fprintf(&b, "%s=%d\n", envMTU, e.MTU)
	fmt.Fprintf(&b, "%s=%t\n", envIPMasq, e.IPMasq)
	return b.Bytes()
}

// firstHost is the lease network address + 1, with the lease's length.
func firstHost(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return p
	}
	return netip.PrefixFrom(p.Masked().Addr().Next(), p.Bits())
}

// WriteSubnetFile writes env to path atomically: a temporary file in the
// same directory, fsync, rename. The file is mode 0644; a missing
// directory is created 0755.
func WriteSubnetFile(path string, env SubnetEnv) error {
	if err := env.validate(); err != nil {
		return fmt.Errorf("write subnet file %s: %w", path, err)
	}
	return writeFileAtomic(path, env.Format(), 0o644)
}

func (e SubnetEnv) validate() error {
	if !e.Subnet.IsValid() && !e.IPv6Subnet.IsValid() {
		return errors.New("no subnet to write")
	}
	if e.Subnet.IsValid() != e.Network.IsValid() {
		return fmt.Errorf("%s %s and %s %s must be set together", envNetwork, e.Network, envSubnet, e.Subnet)
	}
	if e.IPv6Subnet.IsValid() != e.IPv6Network.IsValid() {
		return fmt.Errorf("%s %s and %s %s must be set together", envIPv6Network, e.IPv6Network, envIPv6Subnet, e.IPv6Subnet)
	}
	return nil
}

// WriteFileAtomic writes data to path as WriteSubnetFile does: a
// temporary file in the same directory, fsync, rename, mode 0644.
func WriteFileAtomic(path string, data []byte) error { return writeFileAtomic(path, data, 0o644) }

// WriteSecretFile is WriteFileAtomic with mode 0600: the temporary file is
// created 0600 (os.CreateTemp), so the data is never readable by others,
// not even for a moment.
func WriteSecretFile(path string, data []byte) error { return writeFileAtomic(path, data, 0o600) }

func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := ensureDir(dir); err != nil {
		return fmt.Errorf("write %s: create directory: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: chmod: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: rename: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// ensureDir creates dir (and its parents) when missing, mode 0755
// whatever the umask: the CNI plugin reads the file as another user.
func ensureDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case err == nil && !st.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// syncDir makes the rename durable; failure only weakens durability, so
// it is not an error.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// ReadSubnetFile parses a subnet file written by flanneld or overlayd.
// Blank lines, comments (#) and unknown keys are ignored; values may be
// double-quoted. Absent keys leave their field zero. A missing file gives
// an error matching fs.ErrNotExist.
func ReadSubnetFile(path string) (SubnetEnv, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return SubnetEnv{}, fmt.Errorf("read subnet file: %w", err)
	}
	env, err := ParseSubnetFile(data)
	if err != nil {
		return SubnetEnv{}, fmt.Errorf("subnet file %s: %w", path, err)
	}
	return env, nil
}

// ParseSubnetFile parses the content of a subnet file (see ReadSubnetFile).
func ParseSubnetFile(data []byte) (SubnetEnv, error) {
	var env SubnetEnv
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return SubnetEnv{}, fmt.Errorf("line %d: %q is not KEY=VALUE", n, truncateJSON([]byte(line)))
		}
		key, value = strings.TrimSpace(key), unquote(strings.TrimSpace(value))
		if err := env.set(key, value); err != nil {
			return SubnetEnv{}, fmt.Errorf("line %d: %s %q: %w", n, key, truncateJSON([]byte(value)), err)
		}
	}
	if err := sc.Err(); err != nil {
		return SubnetEnv{}, err
	}
	return env, nil
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

func (e *SubnetEnv) set(key, value string) error {
	var err error
	switch key {
	case envNetwork:
		e.Network, err = parseEnvPrefix(value, true, true)
	case envSubnet:
		e.Subnet, err = parseEnvSubnet(value, true)
	case envIPv6Network:
		e.IPv6Network, err = parseEnvPrefix(value, false, true)
	case envIPv6Subnet:
		e.IPv6Subnet, err = parseEnvSubnet(value, false)
	case envMTU:
		e.MTU, err = parseMTU(value)
	case envIPMasq:
		e.IPMasq, err = strconv.ParseBool(value)
		if err != nil {
			err = errors.New("not true or false")
		}
	}
	return err
}

func parseMTU(s string) (int, error) {
	mtu, err := strconv.Atoi(s)
	if err != nil || mtu < minMTU || mtu > maxMTU {
		return 0, fmt.Errorf("not a number in %d..%d", minMTU, maxMTU)
	}
	return mtu, nil
}

// parseEnvSubnet parses FLANNEL_SUBNET / FLANNEL_IPV6_SUBNET: the first
// host of the lease, whose prefix length leaves room for it.
func parseEnvSubnet(s string, want4 bool) (netip.Prefix, error) {
	p, err := parseEnvPrefix(s, want4, false)
	if err != nil {
		return p, err
	}
	if longest := p.Addr().BitLen() - 2; p.Bits() > longest {
		return netip.Prefix{}, fmt.Errorf("prefix longer than /%d", longest)
	}
	return p, nil
}

// parseEnvPrefix parses a CIDR of the given family. A network must be
// masked; a subnet is given by its first host and is returned masked.
func parseEnvPrefix(s string, want4, wantMasked bool) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not a CIDR")
	}
	if p.Addr().Is4() != want4 || p.Addr().Is4In6() {
		if want4 {
			return netip.Prefix{}, errors.New("not an IPv4 CIDR")
		}
		return netip.Prefix{}, errors.New("not an IPv6 CIDR")
	}
	if wantMasked && p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("host bits set (want %s)", p.Masked())
	}
	return p.Masked(), nil
}
