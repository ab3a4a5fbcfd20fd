package backend

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"unsafe"

	"github.com/overlayd/overlayd/internal/netnsutil"
	"golang.org/x/sys/unix"
)

func ethtoolGStrings(names ...string) []byte {
	buf := make([]byte, len(names)*ethGStringLen)
	for i, n := range names {
		copy(buf[i*ethGStringLen:], n)
	}
	return buf
}

func TestParseGStrings(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		n    int
		want []string
	}{
		{"all", ethtoolGStrings("tx-scatter-gather", "tx-checksum-ipv4", "tx-checksum-ip-generic"), 3,
			[]string{"tx-scatter-gather", "tx-checksum-ipv4", "tx-checksum-ip-generic"}},
		{"fewer than the buffer", ethtoolGStrings("a", "b", "c"), 2, []string{"a", "b"}},
		{"count beyond the buffer", ethtoolGStrings("a"), 5, []string{"a"}},
		{"full-length name without NUL", ethtoolGStrings(strings.Repeat("x", 32)), 1, []string{strings.Repeat("x", 32)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseGStrings(tt.data, tt.n)
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFindFeature(t *testing.T) {
	names := make([]string, 40)
	for i := range names {
		names[i] = "f" + strings.Repeat("x", i)
	}
	names[3] = TxChecksumFeature
	names[35] = "late-feature"
	tests := []struct {
		feature    string
		bit, words int
		word       int
		mask       uint32
	}{
		{TxChecksumFeature, 3, 2, 0, 1 << 3},
		{"late-feature", 35, 2, 1, 1 << 3},
	}
	for _, tt := range tests {
		f, err := findFeature(names, tt.feature, "eth0")
		if err != nil {
			t.Fatal(err)
		}
		if f.bit != tt.bit || f.words != tt.words || f.word() != tt.word || f.mask() != tt.mask {
			t.Errorf("%s: got bit %d words %d word %d mask %#x", tt.feature, f.bit, f.words, f.word(), f.mask())
		}
	}
	if _, err := findFeature(names, "no-such-feature", "eth0"); err == nil || !strings.Contains(err.Error(), "no-such-feature") {
		t.Errorf("missing feature: err = %v", err)
	}
}

func TestEthtoolRejectsBadInterfaceName(t *testing.T) {
	for _, name := range []string{"", "sixteen-bytes-xx"} {
		if err := DisableTxChecksumOffload(name); err == nil || !strings.Contains(err.Error(), "interface name") {
			t.Errorf("DisableTxChecksumOffload(%q): err = %v", name, err)
		}
		if _, err := TxChecksumOffloadEnabled(name); err == nil {
			t.Errorf("TxChecksumOffloadEnabled(%q): no error", name)
		}
	}
}

func TestEthtoolIfreqCoversKernelIfreq(t *testing.T) {
	if got := unsafe.Sizeof(ethtoolIfreq{}); got < unix.IFNAMSIZ+24 {
		t.Errorf("ethtoolIfreq is %d bytes, struct ifreq needs %d", got, unix.IFNAMSIZ+24)
	}
}

// TestTxChecksumOffloadInNamespace turns the feature off on a bare vxlan
// device inside a fresh namespace.
func TestTxChecksumOffloadInNamespace(t *testing.T) {
	ns := netnsutil.NewT(t, "csum")
	netnsutil.MustExec(t, ns, "ip", "link", "add", "vx0", "type", "vxlan", "id", "5", "dstport", "8472")
	inNS := func(fn func() error) {
		t.Helper()
		if err := netnsutil.Do(ns, fn); err != nil {
			t.Fatal(err)
		}
	}
	checkOffload := func(want bool) {
		t.Helper()
		inNS(func() error {
			on, err := TxChecksumOffloadEnabled("vx0")
			if err == nil && on != want {
				t.Errorf("%s enabled = %t, want %t", TxChecksumFeature, on, want)
			}
			return err
		})
	}
	checkOffload(true)
	inNS(func() error { return DisableTxChecksumOffload("vx0") })
	checkOffload(false)
	inNS(func() error { return DisableTxChecksumOffload("vx0") }) // idempotent
	checkOffload(false)
	if _, err := exec.LookPath("ethtool"); err == nil {
		out := netnsutil.MustExec(t, ns, "ethtool", "-k", "vx0")
		if !strings.Contains(out, TxChecksumFeature+": off") {
			t.Errorf("ethtool -k vx0 disagrees:\n%s", out)
		}
	}
	// Back on: a device left with offload off by an earlier run must follow
	// --tx-checksum-offload=on (or auto) again.
	inNS(func() error { return SetTxChecksumOffload("vx0", true) })
	checkOffload(true)
	inNS(func() error { return SetTxChecksumOffload("vx0", true) }) // idempotent
	checkOffload(true)
	inNS(func() error {
		err := DisableTxChecksumOffload("nosuchdev0")
		if !errors.Is(err, unix.ENODEV) {
			t.Errorf("missing device: err = %v, want ENODEV", err)
		}
		return nil
	})
}
