package subnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Config is the validated network config read from <prefix>/config, with
// every default of flannel applied.
type Config struct {
	EnableIPv4 bool
	Network    netip.Prefix // masked
	SubnetLen  int
	SubnetMin  netip.Addr
	SubnetMax  netip.Addr

	EnableIPv6    bool
	IPv6Network   netip.Prefix
	IPv6SubnetLen int
	IPv6SubnetMin netip.Addr
	IPv6SubnetMax netip.Addr

	EnableNFTables bool

	// BackendType is the lower-case Backend.Type ("vxlan").
	BackendType string
	// Backend is the raw Backend object, decoded by the backend.
	Backend json.RawMessage
	// VXLAN holds the decoded VXLAN backend options with defaults applied.
	VXLAN VXLANOptions
}

// VXLANOptions are the Backend options of the vxlan type.
type VXLANOptions struct {
	VNI           int // default 1
	Port          int // 0 = kernel default (8472 in the device we create)
	GBP           bool
	DirectRouting bool
	Learning      bool
	MTU           int // 0 = external interface MTU
}

// Limits of the VXLAN options.
const (
	maxVNI  = 1<<24 - 1
	maxPort = 65535
	minMTU  = 68
	maxMTU  = 65535
)

// configJSON is the wire form. encoding/json matches the field names
// case-insensitively, as flanneld does. Pointers tell absent from zero
// where flannel's defaults depend on it.
type configJSON struct {
	EnableIPv4     *bool
	Network        string
	SubnetLen      int
	SubnetMin      string
	SubnetMax      string
	EnableIPv6     bool
	IPv6Network    string
	IPv6SubnetLen  int
	IPv6SubnetMin  string
	IPv6SubnetMax  string
	EnableNFTables bool
	Backend        json.RawMessage
}

// family describes the field names and limits of one address family, so
// IPv4 and IPv6 share one validation path.
type family struct {
	name                                       string // "IPv4" / "IPv6"
	networkField, lenField, minField, maxField string
	bits                                       int // 32 / 128
	maxSubnetLen                               int // 30 / 126
	defaultSubnetLen                           int // 24 / 64
	defaultUpTo                                int // network prefix up to which defaultSubnetLen applies: 22 / 62
	smallestNetwork                            int // largest prefix with a default SubnetLen: 28 / 124
}

var (
	familyV4 = family{
		name: "IPv4", networkField: "Network", lenField: "SubnetLen",
		minField: "SubnetMin", maxField: "SubnetMax",
		bits: 32, maxSubnetLen: 30, defaultSubnetLen: 24, defaultUpTo: 22, smallestNetwork: 28,
	}
	familyV6 = family{
		name: "IPv6", networkField: "IPv6Network", lenField: "IPv6SubnetLen",
		minField: "IPv6SubnetMin", maxField: "IPv6SubnetMax",
		bits: 128, maxSubnetLen: 126, defaultSubnetLen: 64, defaultUpTo: 62, smallestNetwork: 124,
	}
)

// familyInput is the raw per-family part of the config.
type familyInput struct {
	network, min, max string
	subnetLen         int
}

// familyRange is the validated per-family part of the config.
type familyRange struct {
	network   netip.Prefix
	subnetLen int
	min, max  netip.Addr
}

// ParseConfig decodes and validates flannel's network config JSON.
// Errors name the field and the offending value.
func ParseConfig(data []byte) (*Config, error) {
	var in configJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("config: invalid JSON: %w", err)
	}
	cfg := &Config{
		EnableIPv4:     in.EnableIPv4 == nil || *in.EnableIPv4,
		EnableIPv6:     in.EnableIPv6,
		EnableNFTables: in.EnableNFTables,
	}
	if !cfg.EnableIPv4 && !cfg.EnableIPv6 {
		return nil, errors.New("config: EnableIPv4 is false and EnableIPv6 is false: at least one must be enabled")
	}
	if cfg.EnableIPv4 {
		r, err := familyV4.validate(familyInput{in.Network, in.SubnetMin, in.SubnetMax, in.SubnetLen})
		if err != nil {
			return nil, err
		}
		cfg.Network, cfg.SubnetLen, cfg.SubnetMin, cfg.SubnetMax = r.network, r.subnetLen, r.min, r.max
	}
	if cfg.EnableIPv6 {
		r, err := familyV6.validate(familyInput{in.IPv6Network, in.IPv6SubnetMin, in.IPv6SubnetMax, in.IPv6SubnetLen})
		if err != nil {
			return nil, err
		}
		cfg.IPv6Network, cfg.IPv6SubnetLen, cfg.IPv6SubnetMin, cfg.IPv6SubnetMax = r.network, r.subnetLen, r.min, r.max
	}
	if err := cfg.parseBackend(in.Backend); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (f family) validate(in familyInput) (familyRange, error) {
	var r familyRange
	var err error
	if r.network, err = f.parseNetwork(in.network); err != nil {
		return r, err
	}
	if r.subnetLen, err = f.subnetLen(r.network, in.subnetLen); err != nil {
		return r, err
	}
	if r.min, err = f.boundary(f.minField, in.min, r, firstSubnet(r.network, r.subnetLen)); err != nil {
		return r, err
	}
	if r.max, err = f.boundary(f.maxField, in.max, r, lastSubnet(r.network, r.subnetLen)); err != nil {
		return r, err
	}
	if r.min.Compare(r.max) > 0 {
		return r, fmt.Errorf("config: %s %s is above %s %s", f.minField, r.min, f.maxField, r.max)
	}
	return r, nil
}

func (f family) parseNetwork(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("config: %s is missing: it is required when %s is enabled", f.networkField, f.name)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("config: %s %q is not a CIDR: %w", f.networkField, s, err)
	}
	if p.Addr().BitLen() != f.bits || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("config: %s %q is not an %s CIDR", f.networkField, s, f.name)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("config: %s %s has host bits set (did you mean %s?)", f.networkField, p, p.Masked())
	}
	return p, nil
}

func (f family) subnetLen(network netip.Prefix, given int) (int, error) {
	prefix := network.Bits()
	switch {
	case given < 0:
		return 0, fmt.Errorf("config: %s %d is negative", f.lenField, given)
	case given > f.maxSubnetLen:
		return 0, fmt.Errorf("config: %s %d is too long: must be <= %d", f.lenField, given, f.maxSubnetLen)
	case given > 0 && given < prefix+2:
		return 0, fmt.Errorf("config: %s %d is too short for %s %s: must be >= %d to accommodate at least four subnets",
			f.lenField, given, f.networkField, network, prefix+2)
	case given > 0:
		return given, nil
	case prefix <= f.defaultUpTo:
		return f.defaultSubnetLen, nil
	case prefix <= f.smallestNetwork:
		return prefix + 2, nil
	default:
		return 0, fmt.Errorf("config: %s %s is too small: the prefix must be <= %d (or set %s)",
			f.networkField, network, f.smallestNetwork, f.lenField)
	}
}

// boundary parses SubnetMin or SubnetMax, or returns def when absent.
func (f family) boundary(field, s string, r familyRange, def netip.Addr) (netip.Addr, error) {
	if s == "" {
		return def, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.BitLen() != f.bits || a.Zone() != "" || a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("config: %s %q is not an %s address", field, s, f.name)
	}
	if !r.network.Contains(a) {
		return netip.Addr{}, fmt.Errorf("config: %s %s is outside %s %s", field, a, f.networkField, r.network)
	}
	if netip.PrefixFrom(a, r.subnetLen).Masked().Addr() != a {
		return netip.Addr{}, fmt.Errorf("config: %s %s is not aligned to %s %d", field, a, f.lenField, r.subnetLen)
	}
	return a, nil
}

// backendJSON is Backend's wire form: the type plus the vxlan options,
// pre-filled with their defaults before decoding.
type backendJSON struct {
	Type          string
	VNI           int
	Port          int
	GBP           bool
	DirectRouting bool
	Learning      bool
	MTU           int
}

func (c *Config) parseBackend(raw json.RawMessage) error {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return fmt.Errorf("config: Backend is missing: overlayd supports only Backend.Type %q (flanneld would fall back to \"udp\")", BackendVXLAN)
	}
	in := backendJSON{VNI: 1}
	if err := json.Unmarshal(raw, &in); err != nil {
		return fmt.Errorf("config: Backend %s: %w", truncateJSON(raw), err)
	}
	if in.Type == "" {
		return fmt.Errorf("config: Backend.Type is missing: overlayd supports only %q", BackendVXLAN)
	}
	if !strings.EqualFold(in.Type, BackendVXLAN) {
		return fmt.Errorf("config: Backend.Type %q is not supported: overlayd supports only %q", in.Type, BackendVXLAN)
	}
	opts := VXLANOptions{
		VNI: in.VNI, Port: in.Port, GBP: in.GBP,
		DirectRouting: in.DirectRouting, Learning: in.Learning, MTU: in.MTU,
	}
	if err := opts.validate(); err != nil {
		return err
	}
	c.BackendType = BackendVXLAN
	c.Backend = append(json.RawMessage(nil), raw...)
	c.VXLAN = opts
	return nil
}

func (o VXLANOptions) validate() error {
	if o.VNI < 0 || o.VNI > maxVNI {
		return fmt.Errorf("config: Backend.VNI %d is out of range: must be 0..%d", o.VNI, maxVNI)
	}
	if o.Port < 0 || o.Port > maxPort {
		return fmt.Errorf("config: Backend.Port %d is out of range: must be 0..%d", o.Port, maxPort)
	}
	if o.MTU != 0 && (o.MTU < minMTU || o.MTU > maxMTU) {
		return fmt.Errorf("config: Backend.MTU %d is out of range: must be 0 (interface MTU) or %d..%d", o.MTU, minMTU, maxMTU)
	}
	return nil
}

func truncateJSON(raw []byte) string {
	const max = 80
	if len(raw) > max {
		return string(raw[:max]) + "..."
	}
	return string(raw)
}
