package subnet

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		json string
		want Config // Backend left out of the comparison
	}{
		{
			name: "flannel-observed config",
			json: `{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}`,
			want: v4Config("10.244.0.0/16", 24, "10.244.1.0", "10.244.255.0"),
		},
		{
			name: "SubnetLen absent, /16 gives 24",
			json: `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`,
			want: v4Config("10.5.0.0/16", 24, "10.5.1.0", "10.5.255.0"),
		},
		{
			name: "SubnetLen absent, /22 gives 24",
			json: `{"Network":"10.5.0.0/22","Backend":{"Type":"vxlan"}}`,
			want: v4Config("10.5.0.0/22", 24, "10.5.1.0", "10.5.3.0"),
		},
		{
			name: "SubnetLen absent, /23 gives prefix+2",
			json: `{"Network":"10.5.0.0/23","Backend":{"Type":"vxlan"}}`,
			want: v4Config("10.5.0.0/23", 25, "10.5.0.128", "10.5.1.128"),
		},
		{
			name: "SubnetLen absent, /28 gives 30",
			json: `{"Network":"10.5.0.0/28","Backend":{"Type":"vxlan"}}`,
			want: v4Config("10.5.0.0/28", 30, "10.5.0.4", "10.5.0.12"),
		},
		{
			name: "SubnetLen 0 means absent",
			json: `{"Network":"10.0.0.0/8","SubnetLen":0,"Backend":{"Type":"vxlan"}}`,
			want: v4Config("10.0.0.0/8", 24, "10.0.1.0", "10.255.255.0"),
		},
		{
			name: "SubnetLen prefix+2 and 30 accepted",
			json: `{"Network":"10.5.0.0/28","SubnetLen":30,"Backend":{"Type":"vxlan"}}`,
			want: v4Config("10.5.0.0/28", 30, "10.5.0.4", "10.5.0.12"),
		},
		{
			name: "SubnetMin and SubnetMax given",
			json: `{"Network":"10.5.0.0/16","SubnetMin":"10.5.10.0","SubnetMax":"10.5.20.0","Backend":{"Type":"vxlan"}}`,
			want: v4Config("10.5.0.0/16", 24, "10.5.10.0", "10.5.20.0"),
		},
		{
			name: "SubnetMin equal to SubnetMax",
			json: `{"Network":"10.5.0.0/16","SubnetMin":"10.5.7.0","SubnetMax":"10.5.7.0","Backend":{"Type":"vxlan"}}`,
			want: v4Config("10.5.0.0/16", 24, "10.5.7.0", "10.5.7.0"),
		},
		{
			name: "field names match case-insensitively",
			json: `{"network":"10.5.0.0/16","SUBNETLEN":26,"backend":{"type":"VXLAN","vni":7}}`,
			want: func() Config {
				c := v4Config("10.5.0.0/16", 26, "10.5.0.64", "10.5.255.192")
				c.VXLAN.VNI = 7
				return c
			}(),
		},
		{
			name: "VXLAN options",
			json: `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":4096,"Port":4789,"GBP":true,"DirectRouting":true,"Learning":true,"MTU":1400}}`,
			want: func() Config {
				c := v4Config("10.5.0.0/16", 24, "10.5.1.0", "10.5.255.0")
				c.VXLAN = VXLANOptions{VNI: 4096, Port: 4789, GBP: true, DirectRouting: true, Learning: true, MTU: 1400}
				return c
			}(),
		},
		{
			name: "VNI 0 and the limits",
			json: `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":0,"Port":65535,"MTU":68}}`,
			want: func() Config {
				c := v4Config("10.5.0.0/16", 24, "10.5.1.0", "10.5.255.0")
				c.VXLAN = VXLANOptions{VNI: 0, Port: 65535, MTU: 68}
				return c
			}(),
		},
		{
			name: "dual stack with IPv6 defaults",
			json: `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","EnableNFTables":true,"Backend":{"Type":"vxlan"}}`,
			want: func() Config {
				c := v4Config("10.5.0.0/16", 24, "10.5.1.0", "10.5.255.0")
				c.EnableIPv6 = true
				c.IPv6Network = netip.MustParsePrefix("fc00::/48")
				c.IPv6SubnetLen = 64
				c.IPv6SubnetMin = netip.MustParseAddr("fc00:0:0:1::")
				c.IPv6SubnetMax = netip.MustParseAddr("fc00:0:0:ffff::")
				c.EnableNFTables = true
				return c
			}(),
		},
		{
			name: "IPv6 only, /63 gives prefix+2, explicit bounds",
			json: `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:1::/63","IPv6SubnetMin":"fd00:1::","IPv6SubnetMax":"fd00:1:0:1:8000::","Backend":{"Type":"vxlan"}}`,
			want: Config{
				EnableIPv6: true, IPv6Network: netip.MustParsePrefix("fd00:1::/63"), IPv6SubnetLen: 65,
				IPv6SubnetMin: netip.MustParseAddr("fd00:1::"), IPv6SubnetMax: netip.MustParseAddr("fd00:1:0:1:8000::"),
				BackendType: "vxlan", VXLAN: VXLANOptions{VNI: 1},
			},
		},
		{
			name: "IPv6 /124 gives 126",
			json: `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00::/124","Backend":{"Type":"vxlan"}}`,
			want: Config{
				EnableIPv6: true, IPv6Network: netip.MustParsePrefix("fd00::/124"), IPv6SubnetLen: 126,
				IPv6SubnetMin: netip.MustParseAddr("fd00::4"), IPv6SubnetMax: netip.MustParseAddr("fd00::c"),
				BackendType: "vxlan", VXLAN: VXLANOptions{VNI: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tt.json))
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if string(got.Backend) == "" {
				t.Errorf("Backend raw is empty")
			}
			got.Backend = nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("ParseConfig(%s)\n got  %+v\n want %+v", tt.json, *got, tt.want)
			}
		})
	}
}

func v4Config(network string, subnetLen int, min, max string) Config {
	return Config{
		EnableIPv4: true, Network: netip.MustParsePrefix(network), SubnetLen: subnetLen,
		SubnetMin: netip.MustParseAddr(min), SubnetMax: netip.MustParseAddr(max),
		BackendType: "vxlan", VXLAN: VXLANOptions{VNI: 1},
	}
}

func TestParseConfigErrors(t *testing.T) {
	const vx = `,"Backend":{"Type":"vxlan"}`
	tests := []struct {
		name string
		json string
		want []string // substrings of the error
	}{
		{"not JSON", `{"Network":`, []string{"config: invalid JSON"}},
		{"wrong type", `{"Network":"10.5.0.0/16","SubnetLen":"24"` + vx + `}`, []string{"SubnetLen"}},
		{"nothing enabled", `{"EnableIPv4":false` + vx + `}`, []string{"EnableIPv4 is false and EnableIPv6 is false"}},
		{"Network missing", `{"SubnetLen":24` + vx + `}`, []string{"Network is missing"}},
		{"Network not CIDR", `{"Network":"10.5.0.0"` + vx + `}`, []string{`Network "10.5.0.0" is not a CIDR`}},
		{"Network IPv6", `{"Network":"fc00::/48"` + vx + `}`, []string{`Network "fc00::/48" is not an IPv4 CIDR`}},
		{"Network host bits", `{"Network":"10.5.0.1/16"` + vx + `}`, []string{"Network 10.5.0.1/16 has host bits set", "10.5.0.0/16"}},
		{"SubnetLen too long", `{"Network":"10.5.0.0/16","SubnetLen":31` + vx + `}`, []string{"config: SubnetLen 31 is too long: must be <= 30"}},
		{"SubnetLen 32", `{"Network":"10.5.0.0/16","SubnetLen":32` + vx + `}`, []string{"SubnetLen 32 is too long"}},
		{"SubnetLen negative", `{"Network":"10.5.0.0/16","SubnetLen":-1` + vx + `}`, []string{"SubnetLen -1 is negative"}},
		{"SubnetLen too short", `{"Network":"10.5.0.0/16","SubnetLen":17` + vx + `}`, []string{"SubnetLen 17 is too short", "Network 10.5.0.0/16", ">= 18", "four subnets"}},
		{"SubnetLen equal prefix", `{"Network":"10.5.0.0/16","SubnetLen":16` + vx + `}`, []string{"SubnetLen 16 is too short"}},
		{"network too small", `{"Network":"10.5.0.0/29"` + vx + `}`, []string{"Network 10.5.0.0/29 is too small", "<= 28"}},
		{"network too small for explicit len", `{"Network":"10.5.0.0/29","SubnetLen":30` + vx + `}`, []string{"SubnetLen 30 is too short", ">= 31"}},
		{"SubnetMin not an IP", `{"Network":"10.5.0.0/16","SubnetMin":"x"` + vx + `}`, []string{`SubnetMin "x" is not an IPv4 address`}},
		{"SubnetMin IPv6", `{"Network":"10.5.0.0/16","SubnetMin":"fc00::"` + vx + `}`, []string{`SubnetMin "fc00::" is not an IPv4 address`}},
		{"SubnetMin outside", `{"Network":"10.5.0.0/16","SubnetMin":"10.6.0.0"` + vx + `}`, []string{"SubnetMin 10.6.0.0 is outside Network 10.5.0.0/16"}},
		{"SubnetMax outside", `{"Network":"10.5.0.0/16","SubnetMax":"10.4.255.0"` + vx + `}`, []string{"SubnetMax 10.4.255.0 is outside Network 10.5.0.0/16"}},
		{"SubnetMin unaligned", `{"Network":"10.5.0.0/16","SubnetMin":"10.5.1.5"` + vx + `}`, []string{"SubnetMin 10.5.1.5 is not aligned to SubnetLen 24"}},
		{"SubnetMax unaligned", `{"Network":"10.5.0.0/16","SubnetLen":26,"SubnetMax":"10.5.1.32"` + vx + `}`, []string{"SubnetMax 10.5.1.32 is not aligned to SubnetLen 26"}},
		{"SubnetMin above SubnetMax", `{"Network":"10.5.0.0/16","SubnetMin":"10.5.9.0","SubnetMax":"10.5.3.0"` + vx + `}`, []string{"SubnetMin 10.5.9.0 is above SubnetMax 10.5.3.0"}},
		{"IPv6 enabled without network", `{"Network":"10.5.0.0/16","EnableIPv6":true` + vx + `}`, []string{"IPv6Network is missing"}},
		{"IPv6Network is IPv4", `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"10.5.0.0/16"` + vx + `}`, []string{`IPv6Network "10.5.0.0/16" is not an IPv6 CIDR`}},
		{"IPv6Network host bits", `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::1/48"` + vx + `}`, []string{"IPv6Network fc00::1/48 has host bits set"}},
		{"IPv6SubnetLen too long", `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetLen":127` + vx + `}`, []string{"IPv6SubnetLen 127 is too long: must be <= 126"}},
		{"IPv6SubnetLen too short", `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetLen":49` + vx + `}`, []string{"IPv6SubnetLen 49 is too short", ">= 50"}},
		{"IPv6 network too small", `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/125"` + vx + `}`, []string{"IPv6Network fc00::/125 is too small", "<= 124"}},
		{"IPv6SubnetMin outside", `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"fc01::"` + vx + `}`, []string{"IPv6SubnetMin fc01:: is outside IPv6Network fc00::/48"}},
		{"IPv6SubnetMax unaligned", `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMax":"fc00:0:0:5::1"` + vx + `}`, []string{"IPv6SubnetMax fc00:0:0:5::1 is not aligned to IPv6SubnetLen 64"}},
		{"IPv6SubnetMin above max", `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"fc00:0:0:9::","IPv6SubnetMax":"fc00:0:0:5::"` + vx + `}`, []string{"IPv6SubnetMin fc00:0:0:9:: is above IPv6SubnetMax fc00:0:0:5::"}},
		{"Backend missing", `{"Network":"10.5.0.0/16"}`, []string{"Backend is missing", `"vxlan"`, "udp"}},
		{"Backend null", `{"Network":"10.5.0.0/16","Backend":null}`, []string{"Backend is missing"}},
		{"Backend.Type missing", `{"Network":"10.5.0.0/16","Backend":{"VNI":1}}`, []string{"Backend.Type is missing"}},
		{"Backend.Type udp", `{"Network":"10.5.0.0/16","Backend":{"Type":"udp"}}`, []string{`Backend.Type "udp" is not supported`, `only "vxlan"`}},
		{"Backend.Type host-gw", `{"Network":"10.5.0.0/16","Backend":{"Type":"host-gw"}}`, []string{`Backend.Type "host-gw" is not supported`}},
		{"Backend not an object", `{"Network":"10.5.0.0/16","Backend":"vxlan"}`, []string{"config: Backend"}},
		{"VNI negative", `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":-1}}`, []string{"Backend.VNI -1 is out of range: must be 0..16777215"}},
		{"VNI too big", `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":16777216}}`, []string{"Backend.VNI 16777216 is out of range"}},
		{"VNI wrong type", `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":"1"}}`, []string{"VNI"}},
		{"Port negative", `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","Port":-1}}`, []string{"Backend.Port -1 is out of range: must be 0..65535"}},
		{"Port too big", `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","Port":65536}}`, []string{"Backend.Port 65536 is out of range"}},
		{"MTU too small", `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","MTU":67}}`, []string{"Backend.MTU 67 is out of range", "68..65535"}},
		{"MTU negative", `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","MTU":-5}}`, []string{"Backend.MTU -5 is out of range"}},
		{"MTU too big", `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","MTU":65536}}`, []string{"Backend.MTU 65536 is out of range"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tt.json))
			if err == nil {
				t.Fatalf("ParseConfig(%s) = %+v, want an error", tt.json, cfg)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Errorf("error %q does not start with \"config: \"", err)
			}
		})
	}
}

func TestParseConfigKeepsRawBackend(t *testing.T) {
	raw := `{"Type":"vxlan","VNI":3,"Custom":"x"}`
	cfg, err := ParseConfig([]byte(`{"Network":"10.5.0.0/16","Backend":` + raw + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.Backend) != raw {
		t.Errorf("Backend = %s, want %s", cfg.Backend, raw)
	}
}

func TestConfigInRange(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"Network":"10.5.0.0/16","SubnetMin":"10.5.10.0","SubnetMax":"10.5.20.0","Backend":{"Type":"vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		subnet string
		want   bool
	}{
		{"10.5.10.0/24", true},
		{"10.5.20.0/24", true},
		{"10.5.15.0/24", true},
		{"10.5.9.0/24", false},
		{"10.5.21.0/24", false},
		{"10.5.15.0/25", false},
		{"10.5.15.0/23", false},
		{"10.5.15.1/24", false},
		{"10.6.15.0/24", false},
	}
	for _, tt := range tests {
		if got := cfg.InRange(netip.MustParsePrefix(tt.subnet)); got != tt.want {
			t.Errorf("InRange(%s) = %v, want %v", tt.subnet, got, tt.want)
		}
	}
	if cfg.InRange(netip.Prefix{}) {
		t.Errorf("InRange(invalid) = true")
	}
}
