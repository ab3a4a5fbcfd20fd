package subnet

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

// Lease values exactly as flanneld wrote them (docs/compatibility.md, "What flanneld leaves on a node").
const (
	observedV028Node2 = `{"PublicIP":"192.0.2.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"56:b3:03:00:ef:bd"}}`
	observedV028Node1 = `{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"d6:87:b6:fa:f7:31"}}`
	observedV011Node2 = `{"PublicIP":"192.0.2.2","BackendType":"vxlan","BackendData":{"VtepMAC":"0e:0a:46:7c:72:f9"}}`
	observedV011Node1 = `{"PublicIP":"192.0.2.1","BackendType":"vxlan","BackendData":{"VtepMAC":"5a:8e:b7:a6:d8:a1"}}`
	specV011          = `{"PublicIP":"10.37.7.195","BackendType":"vxlan","BackendData":{"VtepMAC":"82:4b:b6:2f:54:4e"}}`
	specV028          = `{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}`
)

func TestLeaseJSONObservedRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		json string
		form LeaseForm
		ip   string
	}{
		{"v0.28 node 2", observedV028Node2, FormV028, "192.0.2.2"},
		{"v0.28 node 1", observedV028Node1, FormV028, "192.0.2.1"},
		{"v0.28 spec", specV028, FormV028, "192.168.64.3"},
		{"v0.11 node 2", observedV011Node2, FormV011, "192.0.2.2"},
		{"v0.11 node 1", observedV011Node1, FormV011, "192.0.2.1"},
		{"v0.11 spec", specV011, FormV011, "10.37.7.195"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs, err := UnmarshalLeaseAttrs([]byte(tt.json))
			if err != nil {
				t.Fatalf("UnmarshalLeaseAttrs: %v", err)
			}
			if attrs.PublicIP != netip.MustParseAddr(tt.ip) || attrs.BackendType != "vxlan" ||
				attrs.PublicIPv6.IsValid() || attrs.PrivateIP.IsValid() || len(attrs.BackendV6Data) != 0 {
				t.Errorf("decoded %+v", attrs)
			}
			out, err := MarshalLeaseAttrs(attrs, tt.form)
			if err != nil {
				t.Fatalf("MarshalLeaseAttrs: %v", err)
			}
			if string(out) != tt.json {
				t.Errorf("re-encoded\n%s\nwant\n%s", out, tt.json)
			}
		})
	}
}

func TestMarshalLeaseAttrsV028FromParts(t *testing.T) {
	attrs := LeaseAttrs{
		PublicIP:    netip.MustParseAddr("192.0.2.1"),
		BackendType: "vxlan",
		BackendData: []byte(`{ "VNI": 1, "VtepMAC": "d6:87:b6:fa:f7:31" }`),
	}
	out, err := MarshalLeaseAttrs(attrs, FormV028)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != observedV028Node1 {
		t.Errorf("got\n%s\nwant\n%s", out, observedV028Node1)
	}
}

func TestLeaseJSONExtensions(t *testing.T) {
	attrs := LeaseAttrs{
		PublicIP:      netip.MustParseAddr("203.0.113.7"),
		PublicIPv6:    netip.MustParseAddr("2001:db8::7"),
		BackendType:   "vxlan",
		BackendData:   []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:00:07"}`),
		BackendV6Data: []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:00:08"}`),
		PrivateIP:     netip.MustParseAddr("192.0.2.7"),
		NodeID:        "0123456789abcdef0123456789abcdef",
		SameSiteKey:   bytes.Repeat([]byte{0xab}, SameSiteKeyLen),
	}
	tests := []struct {
		form LeaseForm
		want string
	}{
		{FormV028, `{"PublicIP":"203.0.113.7","PublicIPv6":"2001:db8::7","BackendType":"vxlan",` +
			`"BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:07"},"BackendV6Data":{"VNI":1,"VtepMAC":"02:00:00:00:00:08"},` +
			`"OverlaydPrivateIP":"192.0.2.7","OverlaydNodeID":"0123456789abcdef0123456789abcdef","OverlaydKey":"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="}`},
		{FormV011, `{"PublicIP":"203.0.113.7","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:07"},` +
			`"OverlaydPrivateIP":"192.0.2.7","OverlaydNodeID":"0123456789abcdef0123456789abcdef","OverlaydKey":"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="}`},
	}
	for _, tt := range tests {
		out, err := MarshalLeaseAttrs(attrs, tt.form)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != tt.want {
			t.Errorf("form %d\n got %s\nwant %s", tt.form, out, tt.want)
		}
		back, err := UnmarshalLeaseAttrs(out)
		if err != nil {
			t.Fatal(err)
		}
		if back.PrivateIP != attrs.PrivateIP || back.PublicIP != attrs.PublicIP || back.NodeID != attrs.NodeID || !bytes.Equal(back.SameSiteKey, attrs.SameSiteKey) {
			t.Errorf("form %d decoded %+v", tt.form, back)
		}
	}
}

// TestLeaseJSONIPv6 pins the dual-stack and IPv6-only forms flanneld
// v0.28 writes: PublicIP "0.0.0.0" and no BackendData in an IPv6-only
// lease, BackendV6Data after BackendData.
func TestLeaseJSONIPv6(t *testing.T) {
	v4data := json.RawMessage(`{"VNI":1,"VtepMAC":"02:00:00:00:00:07"}`)
	v6data := json.RawMessage(`{"VNI":1,"VtepMAC":"02:00:00:00:00:08"}`)
	tests := []struct {
		name  string
		attrs LeaseAttrs
		want  string
	}{
		{"dual-stack", LeaseAttrs{PublicIP: netip.MustParseAddr("192.0.2.7"), PublicIPv6: netip.MustParseAddr("2001:db8::7"),
			BackendType: "vxlan", BackendData: v4data, BackendV6Data: v6data},
			`{"PublicIP":"192.0.2.7","PublicIPv6":"2001:db8::7","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:07"},"BackendV6Data":{"VNI":1,"VtepMAC":"02:00:00:00:00:08"}}`},
		{"IPv6-only", LeaseAttrs{PublicIPv6: netip.MustParseAddr("2001:db8::7"), BackendType: "vxlan", BackendV6Data: v6data},
			`{"PublicIP":"0.0.0.0","PublicIPv6":"2001:db8::7","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"02:00:00:00:00:08"}}`},
	}
	for _, tt := range tests {
		out, err := MarshalLeaseAttrs(tt.attrs, FormV028)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if string(out) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, out, tt.want)
		}
		back, err := UnmarshalLeaseAttrs(out)
		if err != nil || !AttrsEqual(back, tt.attrs) {
			t.Errorf("%s: decoded %+v, %v; want %+v", tt.name, back, err, tt.attrs)
		}
	}
	bad := []struct{ in, want string }{
		{`{"PublicIP":"0.0.0.0","PublicIPv6":null,"BackendType":"vxlan"}`, `PublicIP is "0.0.0.0" and PublicIPv6 is unset`},
		{`{"PublicIP":"192.0.2.1","PublicIPv6":"fe80::1%eth0"}`, `PublicIPv6: "fe80::1%eth0" has a zone`},
	}
	for _, b := range bad {
		if _, err := UnmarshalLeaseAttrs([]byte(b.in)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("UnmarshalLeaseAttrs(%s) = %v, want an error with %q", b.in, err, b.want)
		}
	}
	if _, err := MarshalLeaseAttrs(LeaseAttrs{BackendType: "vxlan"}, FormV028); err == nil {
		t.Errorf("MarshalLeaseAttrs wrote a lease with neither PublicIP nor PublicIPv6")
	}
}

func TestUnmarshalLeaseAttrsLenient(t *testing.T) {
	// Field names match case-insensitively; unknown fields are ignored.
	attrs, err := UnmarshalLeaseAttrs([]byte(`{"publicip":"192.0.2.9","backendtype":"vxlan","Future":{"x":1},"BackendData":null,"PublicIPv6":""}`))
	if err != nil {
		t.Fatal(err)
	}
	if attrs.PublicIP != netip.MustParseAddr("192.0.2.9") || attrs.BackendType != "vxlan" || attrs.BackendData != nil || attrs.PublicIPv6.IsValid() {
		t.Errorf("decoded %+v", attrs)
	}
}

func TestUnmarshalLeaseAttrsErrors(t *testing.T) {
	tests := []struct {
		json, want string
	}{
		{`not json`, "decode lease JSON"},
		{`{"BackendType":"vxlan"}`, "PublicIP is missing"},
		{`null`, "PublicIP is missing"},
		{`{"PublicIP":"nope"}`, `PublicIP: "nope" is not an IP address`},
		{`{"PublicIP":"2001:db8::1"}`, `PublicIP: "2001:db8::1" is not an IPv4 address`},
		{`{"PublicIP":"192.0.2.1","PublicIPv6":"192.0.2.1"}`, `PublicIPv6: "192.0.2.1" is not an IPv6 address`},
		{`{"PublicIP":"192.0.2.1","OverlaydPrivateIP":"x"}`, `OverlaydPrivateIP: "x" is not an IP address`},
		{`{"PublicIP":1}`, "decode lease JSON"},
		{`{"PublicIP":"192.0.2.1","OverlaydKey":"!!"}`, `OverlaydKey: "!!" is not base64`},
		{`{"PublicIP":"192.0.2.1","OverlaydKey":"q6ur"}`, `OverlaydKey: 3 bytes, want 32`},
		{`{"PublicIP":"192.0.2.1","OverlaydNodeID":"a b"}`, `OverlaydNodeID: "a b" has a character`},
		{`{"PublicIP":"192.0.2.1","OverlaydNodeID":"` + strings.Repeat("a", 65) + `"}`, `OverlaydNodeID: 65 characters, at most 64`},
	}
	for _, tt := range tests {
		_, err := UnmarshalLeaseAttrs([]byte(tt.json))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("UnmarshalLeaseAttrs(%s) error %v, want %q", tt.json, err, tt.want)
		}
	}
}

func TestMarshalLeaseAttrsNeedsIPv4(t *testing.T) {
	if _, err := MarshalLeaseAttrs(LeaseAttrs{BackendType: "vxlan"}, FormV028); err == nil {
		t.Errorf("marshal without PublicIP succeeded")
	}
}
