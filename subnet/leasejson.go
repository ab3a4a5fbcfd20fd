package subnet

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
)

// LeaseForm selects which flannel release's JSON a lease is written in.
type LeaseForm int

const (
	// FormV028 is current flannel's form (etcd v3): PublicIPv6 is always
	// present (null when unset) and BackendData carries the VNI.
	FormV028 LeaseForm = iota
	// FormV011 is flannel v0.11's form (etcd v2): no PublicIPv6 field.
	FormV011
)

// leaseJSONv028 fixes the field order flanneld v0.28 writes.
type leaseJSONv028 struct {
	PublicIP          string          `json:"PublicIP"`
	PublicIPv6        *string         `json:"PublicIPv6"`
	BackendType       string          `json:"BackendType"`
	BackendData       json.RawMessage `json:"BackendData,omitempty"`
	BackendV6Data     json.RawMessage `json:"BackendV6Data,omitempty"`
	OverlaydPrivateIP string          `json:"OverlaydPrivateIP,omitempty"`
	OverlaydNodeID    string          `json:"OverlaydNodeID,omitempty"`
	OverlaydKey       string          `json:"OverlaydKey,omitempty"`
}

type leaseJSONv011 struct {
	PublicIP          string          `json:"PublicIP"`
	BackendType       string          `json:"BackendType"`
	BackendData       json.RawMessage `json:"BackendData,omitempty"`
	OverlaydPrivateIP string          `json:"OverlaydPrivateIP,omitempty"`
	OverlaydNodeID    string          `json:"OverlaydNodeID,omitempty"`
	OverlaydKey       string          `json:"OverlaydKey,omitempty"`
}

// leaseJSONIn is the decoding side: encoding/json matches field names
// case-insensitively and ignores unknown fields, as flanneld does.
type leaseJSONIn struct {
	PublicIP          string
	PublicIPv6        *string
	BackendType       string
	BackendData       json.RawMessage
	BackendV6Data     json.RawMessage
	OverlaydPrivateIP string
	OverlaydNodeID    string
	OverlaydKey       string
}

// MarshalLeaseAttrs encodes attrs in the given flannel form.
func MarshalLeaseAttrs(attrs LeaseAttrs, form LeaseForm) ([]byte, error) {
	public, err := publicIPText(attrs)
	if err != nil {
		return nil, err
	}
	private := ""
	if attrs.PrivateIP.IsValid() {
		private = attrs.PrivateIP.String()
	}
	if form == FormV011 {
		if !attrs.PublicIP.IsValid() {
			return nil, fmt.Errorf("encode lease: PublicIP is unset and flannel v0.11's form has no IPv6 (an IPv6-only lease needs etcd v3)")
		}
		return json.Marshal(leaseJSONv011{
			PublicIP:          public,
			BackendType:       attrs.BackendType,
			BackendData:       compactRaw(attrs.BackendData),
			OverlaydPrivateIP: private,
			OverlaydNodeID:    attrs.NodeID,
			OverlaydKey:       encodeKey(attrs.SameSiteKey),
		})
	}
	var v6 *string
	if attrs.PublicIPv6.IsValid() {
		s := attrs.PublicIPv6.String()
		v6 = &s
	}
	return json.Marshal(leaseJSONv028{
		PublicIP:          public,
		PublicIPv6:        v6,
		BackendType:       attrs.BackendType,
		BackendData:       compactRaw(attrs.BackendData),
		BackendV6Data:     compactRaw(attrs.BackendV6Data),
		OverlaydPrivateIP: private,
		OverlaydNodeID:    attrs.NodeID,
		OverlaydKey:       encodeKey(attrs.SameSiteKey),
	})
}

// UnmarshalLeaseAttrs decodes a lease value written by flanneld (any
// release) or overlayd. Errors name the field and value at fault.
func UnmarshalLeaseAttrs(data []byte) (LeaseAttrs, error) {
	var in leaseJSONIn
	if err := json.Unmarshal(data, &in); err != nil {
		return LeaseAttrs{}, fmt.Errorf("decode lease JSON: %w", err)
	}
	var attrs LeaseAttrs
	var err error
	if in.PublicIP == "" {
		// flanneld cannot read a lease without PublicIP, and
		// MarshalLeaseAttrs never writes one: reject it so decode/encode
		// round-trips.
		return LeaseAttrs{}, fmt.Errorf("lease field PublicIP is missing")
	}
	if attrs.PublicIP, err = parseOptionalIP("PublicIP", in.PublicIP, true); err != nil {
		return LeaseAttrs{}, err
	}
	if in.PublicIPv6 != nil {
		if attrs.PublicIPv6, err = parseOptionalIP("PublicIPv6", *in.PublicIPv6, false); err != nil {
			return LeaseAttrs{}, err
		}
	}
	if attrs.PublicIP.IsUnspecified() {
		// An IPv6-only lease: flanneld writes "0.0.0.0" for no IPv4.
		if !attrs.PublicIPv6.IsValid() {
			return LeaseAttrs{}, fmt.Errorf("lease field PublicIP is %q and PublicIPv6 is unset: the lease has no underlay address", in.PublicIP)
		}
		attrs.PublicIP = netip.Addr{}
	}
	if attrs.PrivateIP, err = parseOptionalIP("OverlaydPrivateIP", in.OverlaydPrivateIP, true); err != nil {
		return LeaseAttrs{}, err
	}
	if err := checkNodeID(in.OverlaydNodeID); err != nil {
		return LeaseAttrs{}, err
	}
	attrs.NodeID = in.OverlaydNodeID
	if attrs.SameSiteKey, err = decodeKey(in.OverlaydKey); err != nil {
		return LeaseAttrs{}, err
	}
	attrs.BackendType = in.BackendType
	attrs.BackendData = nullToEmpty(in.BackendData)
	attrs.BackendV6Data = nullToEmpty(in.BackendV6Data)
	return attrs, nil
}

// noPublicIP is PublicIP's text in an IPv6-only lease, as flanneld v0.28
// writes it (its decoder needs an IPv4 address there).
const noPublicIP = "0.0.0.0"

// publicIPText is PublicIP's JSON text: the IPv4 address, or "0.0.0.0" in
// an IPv6-only lease (PublicIP invalid, PublicIPv6 set).
func publicIPText(attrs LeaseAttrs) (string, error) {
	switch {
	case attrs.PublicIP.Is4() && !attrs.PublicIP.IsUnspecified():
		return attrs.PublicIP.String(), nil
	case !attrs.PublicIP.IsValid() && attrs.PublicIPv6.Is6() && !attrs.PublicIPv6.Is4In6():
		return noPublicIP, nil
	case !attrs.PublicIP.IsValid():
		return "", fmt.Errorf("encode lease: PublicIP and PublicIPv6 are both unset")
	default:
		return "", fmt.Errorf("encode lease: PublicIP %q is not a unicast IPv4 address", attrs.PublicIP)
	}
}

// SameSiteKeyLen is the length of an OverlaydKey: an ed25519 public key.
const SameSiteKeyLen = 32

// EncodeSameSiteKey is the text form of a LeaseAttrs.SameSiteKey (base64),
// as in a lease's OverlaydKey or a Node annotation; "" for none.
func EncodeSameSiteKey(key []byte) string { return encodeKey(key) }

// DecodeSameSiteKey reads EncodeSameSiteKey's form; "" is no key.
func DecodeSameSiteKey(s string) ([]byte, error) { return decodeKey(s) }

func encodeKey(key []byte) string {
	if len(key) == 0 {
		return ""
	}
	return base64.StdEncoding.EncodeToString(key)
}

// decodeKey reads an OverlaydKey: empty, or base64 of SameSiteKeyLen bytes.
func decodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("lease field OverlaydKey: %q is not base64: %w", s, err)
	}
	if len(key) != SameSiteKeyLen {
		return nil, fmt.Errorf("lease field OverlaydKey: %d bytes, want %d (an ed25519 public key)", len(key), SameSiteKeyLen)
	}
	return key, nil
}

// maxNodeIDLen bounds OverlaydNodeID (overlayd writes 32 hex digits).
const maxNodeIDLen = 64

// checkNodeID accepts an empty identity or up to maxNodeIDLen letters,
// digits, '-', '_' and '.': it is logged and compared, nothing more.
func checkNodeID(id string) error {
	if len(id) > maxNodeIDLen {
		return fmt.Errorf("lease field OverlaydNodeID: %d characters, at most %d", len(id), maxNodeIDLen)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("lease field OverlaydNodeID: %q has a character other than letters, digits, '-', '_', '.'", id)
		}
	}
	return nil
}

func parseOptionalIP(field, s string, want4 bool) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("lease field %s: %q is not an IP address", field, s)
	}
	if ip.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("lease field %s: %q has a zone", field, s)
	}
	if want4 && !ip.Is4() {
		return netip.Addr{}, fmt.Errorf("lease field %s: %q is not an IPv4 address", field, s)
	}
	if !want4 && (!ip.Is6() || ip.Is4In6()) {
		return netip.Addr{}, fmt.Errorf("lease field %s: %q is not an IPv6 address", field, s)
	}
	return ip, nil
}

func compactRaw(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	return buf.Bytes()
}

func nullToEmpty(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}
