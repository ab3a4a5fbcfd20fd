package backend

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TestDeviceV6InNamespace makes flannel-v6.1 over ul0's IPv6 address next
// to flannel.1: its own name, local address, MTU (underlay − 70) and
// stable MAC; recreated with the kept MAC; addressed with the lease's
// first IPv6 address /128, stale addresses of the network removed.
func TestDeviceV6InNamespace(t *testing.T) {
	n := newDeviceTestNS(t)
	netnsutil.MustExec(t, n.name, "ip", "addr", "add", "2001:db8:1::1/64", "dev", "ul0", "nodad")
	log := deviceTestLogger(new(bytes.Buffer))
	v4, err := EnsureDevice(n.kernel, DeviceSpec{VNI: 1, ExtLinkIndex: n.ext, LocalIP: netip.MustParseAddr("192.0.2.1")}, log)
	if err != nil {
		t.Fatal(err)
	}
	spec := DeviceSpec{VNI: 1, ExtLinkIndex: n.ext, LocalIP: netip.MustParseAddr("2001:db8:1::1")}
	first := n.ensure(t, spec, "created device")
	if first.Name != "flannel-v6.1" || first.MTU != 1430 || first.Index == v4.Index {
		t.Fatalf("IPv6 device %+v, want flannel-v6.1 with MTU 1430 beside flannel.1 (index %d)", first, v4.Index)
	}
	if first.MAC.String() != DefaultDeviceMAC(1, spec.LocalIP).String() || first.MAC.String() == v4.MAC.String() {
		t.Fatalf("IPv6 device MAC %s, want the derived %s, unlike flannel.1's %s", first.MAC, DefaultDeviceMAC(1, spec.LocalIP), v4.MAC)
	}
	second := n.ensure(t, spec, "adopted existing device")
	if second.Index != first.Index {
		t.Fatalf("adoption recreated the device: index %d then %d", first.Index, second.Index)
	}

	netnsutil.MustExec(t, n.name, "ip", "link", "del", "flannel-v6.1")
	spec.MAC = first.MAC
	third := n.ensure(t, spec, "created device")
	if third.MAC.String() != first.MAC.String() {
		t.Fatalf("MAC after recreation %s, want %s", third.MAC, first.MAC)
	}
	out := netnsutil.MustExec(t, n.name, "ip", "-d", "link", "show", "flannel-v6.1")
	for _, want := range []string{"vxlan id 1 local 2001:db8:1::1 dev ul0", "dstport 8472 nolearning", "mtu 1430 ", ",UP", "link/ether " + first.MAC.String()} {
		if !strings.Contains(out, want) {
			t.Errorf("ip -d link show flannel-v6.1 lacks %q:\n%s", want, out)
		}
	}

	netnsutil.MustExec(t, n.name, "ip", "addr", "add", "fd00:10:244:5::/128", "dev", "flannel-v6.1", "nodad")
	netnsutil.MustExec(t, n.name, "ip", "addr", "add", "2001:db8:77::7/128", "dev", "flannel-v6.1", "nodad")
	own, network := netip.MustParsePrefix("fd00:10:244:99::/64"), netip.MustParsePrefix("fd00:10:244::/56")
	for range 2 {
		if err := EnsureDeviceAddress(n.kernel, third, own, network, log); err != nil {
			t.Fatal(err)
		}
	}
	if err := EnsureDeviceAddress(n.kernel, third, netip.MustParsePrefix("10.244.99.0/24"), netip.MustParsePrefix("10.244.0.0/16"), log); err == nil {
		t.Error("an IPv4 subnet on flannel-v6.1 was accepted")
	}
	n.checkAddrs(t, "-6", "flannel-v6.1", map[string]bool{
		"inet6 fd00:10:244:99::/128 scope global": true,
		"inet6 2001:db8:77::7/128":                true,
		"fd00:10:244:5::":                         false,
	})
}

func TestDeviceV6SpecErrors(t *testing.T) {
	n := newDeviceTestNS(t)
	netnsutil.MustExec(t, n.name, "ip", "link", "set", "ul0", "mtu", "1340")
	_, err := EnsureDevice(n.kernel, DeviceSpec{VNI: 1, ExtLinkIndex: n.ext, LocalIP: netip.MustParseAddr("2001:db8:1::1")},
		deviceTestLogger(new(bytes.Buffer)))
	if err == nil || !strings.Contains(err.Error(), "MTU 1270 below 1280") {
		t.Fatalf("err = %v, want MTU 1270 below 1280", err)
	}
}
