package publiccloud

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/vxlandata"
)

// flannelLeaseAttrs is shaped like flanneld's lease value type, written
// from the compatibility spec: PublicIP is a 32-bit address type decoded
// from a dotted-quad JSON string, PublicIPv6 a pointer (null when unset),
// the backend data kept raw. flanneld decodes leases with encoding/json
// into such a type, which ignores fields it does not know.
type flannelLeaseAttrs struct {
	PublicIP      flannelIP4
	PublicIPv6    *flannelIP6     `json:",omitempty"`
	BackendType   string          `json:",omitempty"`
	BackendData   json.RawMessage `json:",omitempty"`
	BackendV6Data json.RawMessage `json:",omitempty"`
}

// flannelVXLANData is the vxlan backend's view of BackendData.
type flannelVXLANData struct {
	VNI     int
	VtepMAC flannelMAC
}

// flannelIP4 is an IPv4 address as a host-order uint32.
type flannelIP4 uint32

func (ip *flannelIP4) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v4 := net.ParseIP(s).To4()
	if v4 == nil {
		return fmt.Errorf("%q is not an IPv4 address", s)
	}
	*ip = flannelIP4(binary.BigEndian.Uint32(v4))
	return nil
}

func (ip flannelIP4) String() string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(ip))
	return netip.AddrFrom4(b).String()
}

type flannelIP6 [16]byte

func (ip *flannelIP6) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return fmt.Errorf("%q is not an IPv6 address", s)
	}
	*ip = a.As16()
	return nil
}

type flannelMAC net.HardwareAddr

func (m *flannelMAC) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	mac, err := net.ParseMAC(s)
	if err != nil {
		return err
	}
	*m = flannelMAC(mac)
	return nil
}

// flannelReads decodes value as flanneld does and checks what it needs
// to program the peer: PublicIP, the vxlan type and the VTEP MAC.
func flannelReads(t *testing.T, value []byte, wantPublic, wantMAC string) flannelLeaseAttrs {
	t.Helper()
	var attrs flannelLeaseAttrs
	if err := json.Unmarshal(value, &attrs); err != nil {
		t.Fatalf("flanneld cannot decode the lease %s: %v", value, err)
	}
	var data flannelVXLANData
	if err := json.Unmarshal(attrs.BackendData, &data); err != nil {
		t.Fatalf("flanneld cannot decode BackendData %s: %v", attrs.BackendData, err)
	}
	if attrs.PublicIP.String() != wantPublic || attrs.BackendType != "vxlan" || net.HardwareAddr(data.VtepMAC).String() != wantMAC {
		t.Fatalf("flanneld reads PublicIP %s, BackendType %q, VtepMAC %s from %s; want %s, vxlan, %s",
			attrs.PublicIP, attrs.BackendType, net.HardwareAddr(data.VtepMAC), value, wantPublic, wantMAC)
	}
	return attrs
}

// TestFlannelReadsOurNATLease: the lease of a node behind NAT carries
// OverlaydPrivateIP (and every overlayd lease OverlaydNodeID, and one
// with same-site detection OverlaydKey), and
// flanneld's decoding still gets everything it needs from it, in both
// the v3 (v0.28) and v2 (v0.11) forms.
func TestFlannelReadsOurNATLease(t *testing.T) {
	mac := net.HardwareAddr{0x0e, 0x11, 0x22, 0x33, 0x44, 0x55}
	cases := []struct {
		name    string
		form    subnet.LeaseForm
		withVNI bool
		private string
		v6      string
		nodeID  string
	}{
		{"v3 behind NAT", subnet.FormV028, true, "198.51.100.2", "", ""},
		{"v3 behind NAT with IPv6", subnet.FormV028, true, "198.51.100.2", "2001:db8::5", ""},
		{"v2 behind NAT", subnet.FormV011, false, "198.51.100.2", "", ""},
		{"v3 without NAT", subnet.FormV028, true, "", "", ""},
		{"v3 with node identity", subnet.FormV028, true, "198.51.100.2", "", "0123456789abcdef0123456789abcdef"},
		{"v2 with node identity", subnet.FormV011, false, "", "", "0123456789abcdef0123456789abcdef"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := vxlandata.Marshal(vxlandata.Data{VNI: 1, VtepMAC: mac}, c.withVNI)
			if err != nil {
				t.Fatal(err)
			}
			attrs := subnet.LeaseAttrs{PublicIP: netip.MustParseAddr("203.0.113.10"), BackendType: "vxlan", BackendData: data, NodeID: c.nodeID}
			if c.nodeID != "" {
				attrs.SameSiteKey = bytes.Repeat([]byte{0xab}, subnet.SameSiteKeyLen) // OverlaydKey
			}
			if c.private != "" {
				attrs.PrivateIP = netip.MustParseAddr(c.private)
			}
			if c.v6 != "" {
				attrs.PublicIPv6 = netip.MustParseAddr(c.v6)
			}
			value, err := subnet.MarshalLeaseAttrs(attrs, c.form)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(value), `"OverlaydPrivateIP":"`+c.private+`"`); got != (c.private != "") {
				t.Fatalf("lease %s: OverlaydPrivateIP present = %v, want %v", value, got, c.private != "")
			}
			got := flannelReads(t, value, "203.0.113.10", mac.String())
			if (got.PublicIPv6 != nil) != (c.v6 != "") {
				t.Errorf("flanneld reads PublicIPv6 %v from %s, want %q", got.PublicIPv6, value, c.v6)
			}
		})
	}
}
