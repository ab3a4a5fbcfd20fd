package backend

import (
	"bytes"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// deviceTestNS is a namespace with ul0 (one end of a veth pair; this
// kernel has no dummy driver) at 192.0.2.1/24, MTU 1500, up, and a netlink
// handle bound to it.
type deviceTestNS struct {
	name   string
	kernel DeviceKernel
	ext    int // ul0's index
}

// checkAddrs fails the test unless `ip <family> addr show dev dev` holds
// each string of want that maps to true and none that maps to false.
func (n deviceTestNS) checkAddrs(t *testing.T, family, dev string, want map[string]bool) {
	t.Helper()
	addrs := netnsutil.MustExec(t, n.name, "ip", family, "addr", "show", "dev", dev)
	for s, present := range want {
		if strings.Contains(addrs, s) != present {
			t.Errorf("%q present = %t, want %t:\n%s", s, !present, present, addrs)
		}
	}
}

func newDeviceTestNS(t *testing.T) deviceTestNS {
	t.Helper()
	ns := netnsutil.NewT(t, "dev")
	for _, cmd := range [][]string{
		{"ip", "link", "add", "ul0", "mtu", "1500", "type", "veth", "peer", "name", "ul0p"},
		{"ip", "addr", "add", "192.0.2.1/24", "dev", "ul0"},
		{"ip", "link", "set", "ul0p", "up"},
		{"ip", "link", "set", "ul0", "up"},
	} {
		netnsutil.MustExec(t, ns, cmd...)
	}
	h, err := netnsutil.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	ul0, err := h.LinkByName("ul0")
	if err != nil {
		t.Fatal(err)
	}
	return deviceTestNS{name: ns, kernel: h, ext: ul0.Attrs().Index}
}

func (n deviceTestNS) ensure(t *testing.T, spec DeviceSpec, wantLog string) Device {
	t.Helper()
	var logs bytes.Buffer
	dev, err := EnsureDevice(n.kernel, spec, deviceTestLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), wantLog) {
		t.Fatalf("log lacks %q:\n%s", wantLog, logs.String())
	}
	return dev
}

func (n deviceTestNS) showLink(t *testing.T) string {
	t.Helper()
	return netnsutil.MustExec(t, n.name, "ip", "-d", "link", "show", "flannel.1")
}

func TestDeviceInNamespace(t *testing.T) {
	n := newDeviceTestNS(t)
	spec := DeviceSpec{VNI: 1, ExtLinkIndex: n.ext, LocalIP: netip.MustParseAddr("192.0.2.1")}

	first := n.ensure(t, spec, "created device")
	second := n.ensure(t, spec, "adopted existing device")
	if second.Index != first.Index || second.MAC.String() != first.MAC.String() {
		t.Fatalf("adoption changed the device: %+v then %+v", first, second)
	}
	checkDeviceMAC(t, first.MAC.String())

	// Deleted behind our back: recreated with the MAC the caller kept.
	netnsutil.MustExec(t, n.name, "ip", "link", "del", "flannel.1")
	spec.MAC = first.MAC
	third := n.ensure(t, spec, "created device")
	if third.MAC.String() != first.MAC.String() {
		t.Fatalf("MAC after recreation %s, want %s", third.MAC, first.MAC)
	}

	out := n.showLink(t)
	for _, want := range []string{
		"vxlan id 1 local 192.0.2.1 dev ul0 srcport 0 0 dstport 8472 nolearning",
		"mtu 1450 qdisc noqueue state UNKNOWN mode DEFAULT group default \n", ",UP",
		"link/ether " + first.MAC.String(),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ip -d link show flannel.1 lacks %q:\n%s", want, out)
		}
	}
}

func TestDeviceRepairsDriftInNamespace(t *testing.T) {
	n := newDeviceTestNS(t)
	spec := DeviceSpec{VNI: 1, ExtLinkIndex: n.ext, LocalIP: netip.MustParseAddr("192.0.2.1")}

	// An incompatible device (wrong port, learning on): recreated, MAC kept.
	netnsutil.MustExec(t, n.name, "ip", "link", "add", "flannel.1", "address", "0a:11:22:33:44:55",
		"type", "vxlan", "id", "1", "local", "192.0.2.1", "dev", "ul0", "dstport", "4789")
	dev := n.ensure(t, spec, "recreated device: port 4789 != 8472")
	if dev.MAC.String() != "0a:11:22:33:44:55" {
		t.Errorf("MAC after recreation %s, want 0a:11:22:33:44:55", dev.MAC)
	}
	// MTU drift and down: fixed in place, same device.
	netnsutil.MustExec(t, n.name, "ip", "link", "set", "flannel.1", "down", "mtu", "1400")
	again := n.ensure(t, spec, "set device MTU")
	if again.Index != dev.Index {
		t.Errorf("index changed from %d to %d while fixing MTU", dev.Index, again.Index)
	}
	out := n.showLink(t)
	if !strings.Contains(out, "mtu 1450") || !strings.Contains(out, ",UP") ||
		!strings.Contains(out, "dstport 8472 nolearning") {
		t.Errorf("device not repaired:\n%s", out)
	}
}

func TestDeviceAddressAndOffloadInNamespace(t *testing.T) {
	n := newDeviceTestNS(t)
	spec := DeviceSpec{VNI: 1, ExtLinkIndex: n.ext, LocalIP: netip.MustParseAddr("192.0.2.1")}
	dev := n.ensure(t, spec, "created device")
	netnsutil.MustExec(t, n.name, "ip", "addr", "add", "10.244.5.0/32", "dev", "flannel.1")
	netnsutil.MustExec(t, n.name, "ip", "addr", "add", "198.51.100.7/32", "dev", "flannel.1")

	own, network := netip.MustParsePrefix("10.244.99.0/24"), netip.MustParsePrefix("10.244.0.0/16")
	for range 2 { // the second call finds nothing to do
		if err := EnsureDeviceAddress(n.kernel, dev, own, network, deviceTestLogger(new(bytes.Buffer))); err != nil {
			t.Fatal(err)
		}
	}
	n.checkAddrs(t, "-4", "flannel.1", map[string]bool{
		"inet 10.244.99.0/32 scope global flannel.1": true,
		"inet 198.51.100.7/32":                       true,
		"10.244.5.0":                                 false,
	})

	err := netnsutil.Do(n.name, func() error {
		if err := DisableTxChecksumOffload(dev.Name); err != nil {
			return err
		}
		on, err := TxChecksumOffloadEnabled(dev.Name)
		if err == nil && on {
			t.Errorf("%s still on for %s", TxChecksumFeature, dev.Name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("ethtool"); err == nil {
		out := netnsutil.MustExec(t, n.name, "ethtool", "-k", dev.Name)
		if !strings.Contains(out, TxChecksumFeature+": off") {
			t.Errorf("ethtool -k %s disagrees:\n%s", dev.Name, out)
		}
	}
}
