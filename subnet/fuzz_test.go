package subnet

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}`,
		`{"Network":"10.5.0.0/16","SubnetMin":"10.5.10.0","SubnetMax":"10.5.20.0","Backend":{"Type":"vxlan","VNI":4096,"Port":4789,"GBP":true,"DirectRouting":true,"MTU":1400}}`,
		`{"Network":"10.5.0.0/28","Backend":{"Type":"vxlan"}}`,
		`{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}`,
		`{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/124","IPv6SubnetLen":126,"Backend":{"Type":"VXLAN"}}`,
		`{"Network":"10.5.0.1/16"}`,
		`{"Network":"255.255.255.0/24","SubnetLen":30,"Backend":{"Type":"vxlan"}}`,
		`{"Network":"0.0.0.0/0","Backend":{"Type":"vxlan"}}`,
		`{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"::/0","IPv6SubnetLen":2,"Backend":{"Type":"vxlan"}}`,
		`null`, `{}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		if cfg.EnableIPv4 {
			checkRange(t, "IPv4", cfg.Network.Contains(cfg.SubnetMin) && cfg.Network.Contains(cfg.SubnetMax) &&
				cfg.SubnetMin.Compare(cfg.SubnetMax) <= 0 && cfg.SubnetLen <= 30 && cfg.SubnetLen >= cfg.Network.Bits()+2)
			for _, c := range Candidates(cfg, nil, 3) {
				if !cfg.InRange(c) {
					t.Fatalf("candidate %v of %+v is not InRange", c, cfg)
				}
			}
		}
		if cfg.EnableIPv6 {
			checkRange(t, "IPv6", cfg.IPv6Network.Contains(cfg.IPv6SubnetMin) && cfg.IPv6Network.Contains(cfg.IPv6SubnetMax) &&
				cfg.IPv6SubnetMin.Compare(cfg.IPv6SubnetMax) <= 0 && cfg.IPv6SubnetLen <= 126)
		}
		if cfg.BackendType != BackendVXLAN {
			t.Fatalf("BackendType %q", cfg.BackendType)
		}
	})
}

func checkRange(t *testing.T, family string, ok bool) {
	t.Helper()
	if !ok {
		t.Fatalf("accepted an inconsistent %s config", family)
	}
}

func FuzzUnmarshalLeaseAttrs(f *testing.F) {
	for _, s := range []string{
		observedV028Node1, observedV028Node2, observedV011Node1, observedV011Node2, specV011, specV028,
		`{"PublicIP":"203.0.113.7","PublicIPv6":"2001:db8::7","BackendType":"vxlan","BackendData":{"VNI":1},"BackendV6Data":{"x":"<"},"OverlaydPrivateIP":"192.0.2.7"}`,
		`{"publicip":"192.0.2.9","BackendData":null,"PublicIPv6":""}`,
		`{"PublicIP":"192.0.2.9","BackendData":[1, 2 ,"\u2028"]}`,
		`{"PublicIP":"192.0.2.9","OverlaydNodeID":"0123456789abcdef0123456789abcdef","OverlaydKey":"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="}`,
		`{"PublicIP":"192.0.2.9","overlaydnodeid":"a.b-c_d","overlaydkey":""}`,
		// IPv6-only, as flanneld v0.28 writes it; and without PublicIPv6.
		`{"PublicIP":"0.0.0.0","PublicIPv6":"2001:db8:ffff::1","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"f2:3b:25:2a:05:1e"}}`,
		`{"PublicIP":"0.0.0.0","PublicIPv6":null}`, `{"PublicIP":"0.0.0.0","PublicIPv6":"::ffff:1.2.3.4"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		attrs, err := UnmarshalLeaseAttrs(data)
		if err != nil {
			return
		}
		for _, form := range []LeaseForm{FormV028, FormV011} {
			enc, err := MarshalLeaseAttrs(attrs, form)
			if form == FormV011 && !attrs.PublicIP.IsValid() {
				if err == nil {
					t.Fatalf("IPv6-only %+v encoded in the v0.11 form: %s", attrs, enc)
				}
				continue // the v0.11 form has no IPv6
			}
			if err != nil {
				t.Fatalf("decoded %q but cannot re-encode %+v: %v", data, attrs, err)
			}
			back, err := UnmarshalLeaseAttrs(enc)
			if err != nil {
				t.Fatalf("cannot decode our own encoding %s: %v", enc, err)
			}
			want := attrs
			if form == FormV011 {
				want.PublicIPv6, want.BackendV6Data = back.PublicIPv6, back.BackendV6Data
			}
			if !AttrsEqual(back, want) {
				t.Fatalf("round trip changed the value:\n in  %+v\n out %+v", want, back)
			}
			enc2, err := MarshalLeaseAttrs(back, form)
			if err != nil || !bytes.Equal(enc, enc2) {
				t.Fatalf("encoding is not stable: %s then %s (%v)", enc, enc2, err)
			}
		}
	})
}

func FuzzParseKeyName(f *testing.F) {
	for _, s := range []string{
		"10.244.37.0-24", "10.244.99.0-24", "10.244.7.0-24", "10.244.15.0-24",
		"10.5.34.0-24&fc00:0:0:1::-64", "0.0.0.0-0", "10.5.34.0-+24", "fc00::-64", "10.5.34.1-24",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := ParseKeyName(name)
		if err != nil {
			return
		}
		if !p.IsValid() || !p.Addr().Is4() || p.Masked() != p {
			t.Fatalf("ParseKeyName(%q) = %v", name, p)
		}
		v4part, _, _ := strings.Cut(name, "&")
		if KeyName(p) != v4part {
			t.Fatalf("ParseKeyName(%q) = %v, whose KeyName is %q", name, p, KeyName(p))
		}
	})
}

// FuzzParseLeaseIDName: whatever parses is a masked subnet of the right
// family in each part, and formats back to the very name.
func FuzzParseLeaseIDName(f *testing.F) {
	for _, s := range []string{
		"10.244.37.0-24", "10.5.34.0-24&fc00:0:0:1::-64", "0.0.0.0-0&fc00:0:0:1::-64", "0.0.0.0-0",
		"10.5.34.0-24&FC00::-64", "10.5.34.0-24&fc00::1-64", "0.0.0.0-0&", "10.5.34.0-24&::ffff:1.2.3.0-120",
		"10.5.34.0-24&2001:db8::-128", "10.5.34.0-24&::-0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		id, err := ParseLeaseIDName(name)
		if err != nil {
			return
		}
		if !id.IsValid() {
			t.Fatalf("ParseLeaseIDName(%q) = %+v: no subnet", name, id)
		}
		if id.Subnet.IsValid() && (!id.Subnet.Addr().Is4() || id.Subnet.Masked() != id.Subnet) {
			t.Fatalf("ParseLeaseIDName(%q): IPv4 part %v", name, id.Subnet)
		}
		if p := id.IPv6Subnet; p.IsValid() && (!p.Addr().Is6() || p.Addr().Is4In6() || p.Addr().Zone() != "" || p.Masked() != p) {
			t.Fatalf("ParseLeaseIDName(%q): IPv6 part %v", name, p)
		}
		if id.KeyName() != name {
			t.Fatalf("ParseLeaseIDName(%q) = %+v, whose KeyName is %q", name, id, id.KeyName())
		}
	})
}

func FuzzReadSubnetFile(f *testing.F) {
	for _, s := range []string{
		"FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.99.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
		"# c\n\nFLANNEL_NETWORK=\"10.5.0.0/16\"\r\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:7::1/64\n",
		"FLANNEL_MTU=x\n", "=\n", "FLANNEL_SUBNET=\"\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "subnet.env")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		env, err := ReadSubnetFile(path)
		if err != nil {
			return
		}
		// Whatever was accepted re-reads to the same from our own format.
		if env.Network.IsValid() && env.Subnet.IsValid() {
			if env.MTU == 0 {
				env.MTU = 1450
			}
			back, err := ParseSubnetFile(env.Format())
			if err != nil {
				t.Fatalf("cannot parse our own format of %+v: %v", env, err)
			}
			if back.Network != env.Network || back.Subnet != env.Subnet || back.MTU != env.MTU || back.IPMasq != env.IPMasq {
				t.Fatalf("round trip %+v -> %+v", env, back)
			}
		}
	})
}
