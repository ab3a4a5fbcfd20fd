package subnet

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func mustConfig(t testing.TB, js string) *Config {
	t.Helper()
	cfg, err := ParseConfig([]byte(js))
	if err != nil {
		t.Fatalf("ParseConfig(%s): %v", js, err)
	}
	return cfg
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestCandidates(t *testing.T) {
	small := `{"Network":"10.5.0.0/28","Backend":{"Type":"vxlan"}}` // /30s: .4 .8 .12
	tests := []struct {
		name  string
		cfg   string
		taken []string
		limit int
		want  []string
	}{
		{
			name: "walks upward from SubnetMin, SubnetMax inclusive",
			cfg:  small, limit: 100,
			want: []string{"10.5.0.4/30", "10.5.0.8/30", "10.5.0.12/30"},
		},
		{
			name: "skips taken subnets given in any order",
			cfg:  small, limit: 100, taken: []string{"10.5.0.12/30", "10.5.0.4/30"},
			want: []string{"10.5.0.8/30"},
		},
		{
			name: "a larger taken prefix covers several candidates",
			cfg:  `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`, limit: 3,
			taken: []string{"10.5.0.0/22", "10.5.5.0/24"},
			want:  []string{"10.5.4.0/24", "10.5.6.0/24", "10.5.7.0/24"},
		},
		{
			name: "a smaller taken prefix blocks its enclosing candidate",
			cfg:  small, limit: 100, taken: []string{"10.5.0.9/32"},
			want: []string{"10.5.0.4/30", "10.5.0.12/30"},
		},
		{
			name: "taken outside the range and of another family are ignored",
			cfg:  small, limit: 100, taken: []string{"10.6.0.4/30", "fc00::/64", "10.5.0.0/30"},
			want: []string{"10.5.0.4/30", "10.5.0.8/30", "10.5.0.12/30"},
		},
		{
			name: "a taken prefix covering everything",
			cfg:  small, limit: 100, taken: []string{"0.0.0.0/0"},
			want: nil,
		},
		{
			name: "full network",
			cfg:  small, limit: 100, taken: []string{"10.5.0.4/30", "10.5.0.8/30", "10.5.0.12/30"},
			want: nil,
		},
		{
			name: "bounded by limit",
			cfg:  `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`, limit: 2,
			want: []string{"10.5.1.0/24", "10.5.2.0/24"},
		},
		{
			name:  "SubnetMin and SubnetMax honoured",
			cfg:   `{"Network":"10.5.0.0/16","SubnetMin":"10.5.250.0","SubnetMax":"10.5.252.0","Backend":{"Type":"vxlan"}}`,
			limit: 100, taken: []string{"10.5.251.0/24"},
			want: []string{"10.5.250.0/24", "10.5.252.0/24"},
		},
		{
			name:  "top of the address space",
			cfg:   `{"Network":"255.255.255.0/24","SubnetLen":26,"Backend":{"Type":"vxlan"}}`,
			limit: 100, taken: []string{"255.255.255.128/26"},
			want: []string{"255.255.255.64/26", "255.255.255.192/26"},
		},
		{
			name:  "taken up to the top of the address space",
			cfg:   `{"Network":"255.255.255.0/24","SubnetLen":26,"Backend":{"Type":"vxlan"}}`,
			limit: 100, taken: []string{"255.255.255.128/25"},
			want: []string{"255.255.255.64/26"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Candidates(mustConfig(t, tt.cfg), prefixes(tt.taken...), tt.limit)
			if want := prefixes(tt.want...); !slices.Equal(got, want) {
				t.Errorf("Candidates = %v, want %v", got, want)
			}
		})
	}
}

func TestCandidatesDefaultLimit(t *testing.T) {
	cfg := mustConfig(t, `{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}`)
	got := Candidates(cfg, nil, MaxCandidates)
	if len(got) != MaxCandidates {
		t.Fatalf("got %d candidates, want %d", len(got), MaxCandidates)
	}
	if got[0] != netip.MustParsePrefix("10.0.1.0/24") || got[99] != netip.MustParsePrefix("10.0.100.0/24") {
		t.Errorf("candidates run %v .. %v", got[0], got[99])
	}
}

func TestCandidatesManyLeases(t *testing.T) {
	cfg := mustConfig(t, `{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}`)
	taken := manyLeases(10000)
	got := Candidates(cfg, taken, MaxCandidates)
	if len(got) != MaxCandidates {
		t.Fatalf("got %d candidates, want %d", len(got), MaxCandidates)
	}
	// Leases occupy 10.0.1.0 .. 10.39.16.0 (every /24 from the second);
	// the first free one follows them.
	if want := netip.MustParsePrefix("10.39.17.0/24"); got[0] != want {
		t.Errorf("first candidate %v, want %v", got[0], want)
	}
	for _, c := range got {
		for _, p := range taken {
			if c.Overlaps(p) {
				t.Fatalf("candidate %v overlaps taken %v", c, p)
			}
		}
	}
}

// manyLeases returns n consecutive /24s from 10.0.1.0, shuffled.
func manyLeases(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range n {
		k := i + 1
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(k >> 8), byte(k), 0}), 24)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestPickSubnet(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	if _, ok := PickSubnet(nil, rng); ok {
		t.Errorf("PickSubnet(nil) ok")
	}
	cands := prefixes("10.5.1.0/24", "10.5.2.0/24", "10.5.3.0/24")
	seen := map[netip.Prefix]bool{}
	for range 100 {
		p, ok := PickSubnet(cands, rng)
		if !ok || !slices.Contains(cands, p) {
			t.Fatalf("PickSubnet = %v, %v", p, ok)
		}
		seen[p] = true
	}
	if len(seen) != len(cands) {
		t.Errorf("100 picks reached only %v", seen)
	}
}

func TestSubnetArithmeticIPv6(t *testing.T) {
	tests := []struct {
		network     string
		len         int
		first, last string
	}{
		{"fc00::/48", 64, "fc00:0:0:1::", "fc00:0:0:ffff::"},
		{"fc00::/62", 64, "fc00:0:0:1::", "fc00:0:0:3::"},
		{"::/0", 2, "4000::", "c000::"},
		{"fd00::/120", 122, "fd00::40", "fd00::c0"},
	}
	for _, tt := range tests {
		n := netip.MustParsePrefix(tt.network)
		if got := firstSubnet(n, tt.len); got.String() != tt.first {
			t.Errorf("firstSubnet(%s, %d) = %s, want %s", n, tt.len, got, tt.first)
		}
		if got := lastSubnet(n, tt.len); got.String() != tt.last {
			t.Errorf("lastSubnet(%s, %d) = %s, want %s", n, tt.len, got, tt.last)
		}
	}
	got := freeSubnets(netip.MustParseAddr("fc00:0:0:1::"), netip.MustParseAddr("fc00:0:0:4::"), 64,
		prefixes("fc00:0:0:2::/63", "10.0.0.0/8"), 10)
	if want := prefixes("fc00:0:0:1::/64", "fc00:0:0:4::/64"); !slices.Equal(got, want) {
		t.Errorf("freeSubnets v6 = %v, want %v", got, want)
	}
}

func BenchmarkCandidates10kLeases(b *testing.B) {
	cfg := mustConfig(b, `{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}`)
	taken := manyLeases(10000)
	b.ReportAllocs()
	for b.Loop() {
		if got := Candidates(cfg, taken, MaxCandidates); len(got) != MaxCandidates {
			b.Fatal(fmt.Sprint(len(got)))
		}
	}
}

// BenchmarkCandidatesV6_10kLeases: the IPv6 search over 10,000 taken /64s
// at the bottom of a /32 (2^32 candidate subnets), next to the IPv4 one.
func BenchmarkCandidatesV6_10kLeases(b *testing.B) {
	cfg := mustConfig(b, `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/32","Backend":{"Type":"vxlan"}}`)
	taken := make([]netip.Prefix, 0, 10000)
	for i := range 10000 {
		taken = append(taken, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, byte(i >> 8), byte(i)}), 64))
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := CandidatesV6(cfg, taken, MaxCandidates); len(got) != MaxCandidates {
			b.Fatal(fmt.Sprint(len(got)))
		}
	}
}
