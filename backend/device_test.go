package backend

import (
	"bytes"
	"cmp"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// fakeDeviceKernel behaves like the kernel for the calls DeviceKernel makes:
// ENODEV for missing links, EEXIST for duplicates, EADDRNOTAVAIL for
// deleting a missing address, default port 8472, a kernel-chosen MAC when
// none is given. Every write is recorded in writes.
type fakeDeviceKernel struct {
	links     map[int]netlink.Link
	addrs     map[int][]netlink.Addr
	nextIndex int
	writes    []string
}

func newFakeDeviceKernel() *fakeDeviceKernel {
	k := &fakeDeviceKernel{links: map[int]netlink.Link{}, addrs: map[int][]netlink.Addr{}, nextIndex: 2}
	ul0 := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "ul0", MTU: 1500, Flags: net.FlagUp,
		HardwareAddr: deviceMustMAC("52:54:00:00:00:01")}}
	k.put(ul0)
	return k
}

// put stores a copy of link under a new index, as if it had been there.
func (k *fakeDeviceKernel) put(link netlink.Link) int {
	link = copyLink(link)
	link.Attrs().Index = k.nextIndex
	k.links[k.nextIndex] = link
	k.nextIndex++
	return link.Attrs().Index
}

func copyLink(link netlink.Link) netlink.Link {
	switch l := link.(type) {
	case *netlink.Vxlan:
		c := *l
		c.HardwareAddr = slices.Clone(l.HardwareAddr)
		c.SrcAddr = slices.Clone(l.SrcAddr)
		return &c
	case *netlink.Dummy:
		c := *l
		c.HardwareAddr = slices.Clone(l.HardwareAddr)
		return &c
	}
	panic(fmt.Sprintf("fake kernel: unsupported link type %T", link))
}

func (k *fakeDeviceKernel) resolve(link netlink.Link) (netlink.Link, error) {
	a := link.Attrs()
	if a.Index != 0 {
		return k.LinkByIndex(a.Index)
	}
	return k.LinkByName(a.Name)
}

func (k *fakeDeviceKernel) LinkByName(name string) (netlink.Link, error) {
	for _, l := range k.links {
		if l.Attrs().Name == name {
			return copyLink(l), nil
		}
	}
	return nil, fmt.Errorf("link %s: %w", name, unix.ENODEV)
}

func (k *fakeDeviceKernel) LinkByIndex(index int) (netlink.Link, error) {
	if l, ok := k.links[index]; ok {
		return copyLink(l), nil
	}
	return nil, fmt.Errorf("link index %d: %w", index, unix.ENODEV)
}

func (k *fakeDeviceKernel) LinkAdd(link netlink.Link) error {
	if _, err := k.LinkByName(link.Attrs().Name); err == nil {
		return unix.EEXIST
	}
	c := copyLink(link)
	if c.Attrs().HardwareAddr == nil {
		c.Attrs().HardwareAddr = deviceMustMAC(fmt.Sprintf("02:ee:00:00:00:%02x", k.nextIndex))
	}
	if vx, ok := c.(*netlink.Vxlan); ok && vx.Port == 0 {
		vx.Port = 8472
	}
	k.put(c)
	k.writes = append(k.writes, "link add "+link.Attrs().Name)
	return nil
}

func (k *fakeDeviceKernel) LinkDel(link netlink.Link) error {
	l, err := k.resolve(link)
	if err != nil {
		return err
	}
	delete(k.links, l.Attrs().Index)
	delete(k.addrs, l.Attrs().Index)
	k.writes = append(k.writes, "link del "+l.Attrs().Name)
	return nil
}

func (k *fakeDeviceKernel) LinkSetUp(link netlink.Link) error {
	l, err := k.resolve(link)
	if err != nil {
		return err
	}
	k.links[l.Attrs().Index].Attrs().Flags |= net.FlagUp
	k.writes = append(k.writes, "link set up "+l.Attrs().Name)
	return nil
}

func (k *fakeDeviceKernel) LinkSetMTU(link netlink.Link, mtu int) error {
	l, err := k.resolve(link)
	if err != nil {
		return err
	}
	k.links[l.Attrs().Index].Attrs().MTU = mtu
	k.writes = append(k.writes, fmt.Sprintf("link set mtu %d %s", mtu, l.Attrs().Name))
	return nil
}

func (k *fakeDeviceKernel) AddrList(link netlink.Link, family int) ([]netlink.Addr, error) {
	l, err := k.resolve(link)
	if err != nil {
		return nil, err
	}
	var out []netlink.Addr
	for _, a := range k.addrs[l.Attrs().Index] {
		if family == netlink.FAMILY_ALL || (family == netlink.FAMILY_V4) == (a.IP.To4() != nil) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (k *fakeDeviceKernel) AddrAdd(link netlink.Link, addr *netlink.Addr) error {
	l, err := k.resolve(link)
	if err != nil {
		return err
	}
	i := l.Attrs().Index
	if slices.IndexFunc(k.addrs[i], func(a netlink.Addr) bool { return a.IPNet.String() == addr.IPNet.String() }) >= 0 {
		return unix.EEXIST
	}
	k.addrs[i] = append(k.addrs[i], *addr)
	k.writes = append(k.writes, "addr add "+addr.IPNet.String())
	return nil
}

func (k *fakeDeviceKernel) AddrDel(link netlink.Link, addr *netlink.Addr) error {
	l, err := k.resolve(link)
	if err != nil {
		return err
	}
	i := l.Attrs().Index
	j := slices.IndexFunc(k.addrs[i], func(a netlink.Addr) bool { return a.IPNet.String() == addr.IPNet.String() })
	if j < 0 {
		return unix.EADDRNOTAVAIL
	}
	k.addrs[i] = slices.Delete(k.addrs[i], j, j+1)
	k.writes = append(k.writes, "addr del "+addr.IPNet.String())
	return nil
}

var _ DeviceKernel = (*netlink.Handle)(nil)

func deviceMustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func deviceTestLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, nil))
}

const deviceTestExtIndex = 2 // ul0 in newFakeDeviceKernel

var (
	deviceTestLocal      = netip.MustParseAddr("192.0.2.1")
	deviceOldMAC         = deviceMustMAC("0a:00:00:00:00:01")
	deviceSpecMAC        = deviceMustMAC("0a:00:00:00:00:02")
	deviceCompatibleLink = func() *netlink.Vxlan {
		a := netlink.LinkAttrs{Name: "flannel.1", MTU: 1450, Flags: net.FlagUp, HardwareAddr: deviceOldMAC}
		return &netlink.Vxlan{LinkAttrs: a, VxlanId: 1, VtepDevIndex: deviceTestExtIndex,
			SrcAddr: net.IP(deviceTestLocal.AsSlice()), Port: 8472}
	}
)

func deviceNoSpecMAC(s *DeviceSpec) { s.MAC = nil }

func deviceBaseSpec() DeviceSpec {
	return DeviceSpec{VNI: 1, ExtLinkIndex: deviceTestExtIndex, LocalIP: deviceTestLocal, MAC: deviceSpecMAC}
}

func TestEnsureDevice(t *testing.T) {
	tests := []struct {
		name     string
		existing func() netlink.Link // nil: no device
		spec     func(*DeviceSpec)
		wantMAC  net.HardwareAddr
		wantMTU  int
		writes   []string
		log      string
	}{
		{name: "create when missing", wantMAC: deviceSpecMAC, wantMTU: 1450,
			writes: []string{"link add flannel.1", "link set up flannel.1"}, log: "created device"},
		{name: "create with derived MAC", spec: func(s *DeviceSpec) { s.MAC = nil },
			wantMAC: DefaultDeviceMAC(1, deviceTestLocal), wantMTU: 1450,
			writes: []string{"link add flannel.1", "link set up flannel.1"}, log: "created device"},
		{name: "create with explicit MTU", spec: func(s *DeviceSpec) { s.MTU = 1400 }, wantMAC: deviceSpecMAC, wantMTU: 1400,
			writes: []string{"link add flannel.1", "link set up flannel.1"}, log: "created device"},
		{name: "adopt compatible without writes, keep its MAC",
			existing: func() netlink.Link { return deviceCompatibleLink() },
			wantMAC:  deviceOldMAC, wantMTU: 1450, log: "adopted existing device"},
		{name: "adopt, fix MTU and bring up",
			existing: func() netlink.Link { l := deviceCompatibleLink(); l.MTU = 1500; l.Flags = 0; return l },
			wantMAC:  deviceOldMAC, wantMTU: 1450,
			writes: []string{"link set mtu 1450 flannel.1", "link set up flannel.1"}, log: "adopted existing device"},
		{name: "recreate on VNI mismatch, keep MAC",
			existing: func() netlink.Link { l := deviceCompatibleLink(); l.VxlanId = 2; return l },
			spec:     deviceNoSpecMAC, wantMAC: deviceOldMAC, wantMTU: 1450,
			writes: []string{"link del flannel.1", "link add flannel.1", "link set up flannel.1"},
			log:    "recreated device: VNI 2 != 1"},
		{name: "recreate on local mismatch",
			existing: func() netlink.Link { l := deviceCompatibleLink(); l.SrcAddr = net.ParseIP("192.0.2.9").To4(); return l },
			spec:     deviceNoSpecMAC, wantMAC: deviceOldMAC, wantMTU: 1450,
			writes: []string{"link del flannel.1", "link add flannel.1", "link set up flannel.1"},
			log:    "recreated device: local 192.0.2.9 != 192.0.2.1"},
		{name: "recreate on port mismatch",
			existing: func() netlink.Link { l := deviceCompatibleLink(); l.Port = 4789; return l },
			spec:     deviceNoSpecMAC, wantMAC: deviceOldMAC, wantMTU: 1450,
			writes: []string{"link del flannel.1", "link add flannel.1", "link set up flannel.1"},
			log:    "recreated device: port 4789 != 8472"},
		{name: "recreate on link mismatch",
			existing: func() netlink.Link { l := deviceCompatibleLink(); l.VtepDevIndex = 7; return l },
			spec:     deviceNoSpecMAC, wantMAC: deviceOldMAC, wantMTU: 1450,
			writes: []string{"link del flannel.1", "link add flannel.1", "link set up flannel.1"},
			log:    "recreated device: link index 7 != 2"},
		{name: "recreate on learning mismatch",
			existing: func() netlink.Link { l := deviceCompatibleLink(); l.Learning = true; return l },
			spec:     deviceNoSpecMAC, wantMAC: deviceOldMAC, wantMTU: 1450,
			writes: []string{"link del flannel.1", "link add flannel.1", "link set up flannel.1"},
			log:    "recreated device: learning true != false"},
		{name: "recreate on GBP mismatch",
			existing: func() netlink.Link { return deviceCompatibleLink() }, spec: func(s *DeviceSpec) { s.GBP = true; s.MAC = nil },
			wantMAC: deviceOldMAC, wantMTU: 1450,
			writes: []string{"link del flannel.1", "link add flannel.1", "link set up flannel.1"},
			log:    "recreated device: GBP false != true"},
		{name: "recreate a non-vxlan link of that name",
			existing: func() netlink.Link {
				return &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "flannel.1", MTU: 1500, HardwareAddr: deviceOldMAC}}
			},
			spec: deviceNoSpecMAC, wantMAC: deviceOldMAC, wantMTU: 1450,
			writes: []string{"link del flannel.1", "link add flannel.1", "link set up flannel.1"},
			log:    "recreated device: type dummy != vxlan"},
		{name: "recreate with spec MAC when given",
			existing: func() netlink.Link { l := deviceCompatibleLink(); l.Port = 4789; return l },
			wantMAC:  deviceSpecMAC, wantMTU: 1450,
			writes: []string{"link del flannel.1", "link add flannel.1", "link set up flannel.1"},
			log:    "recreated device: port 4789 != 8472"},
		{name: "recreate an old device without a usable MAC with the derived MAC",
			existing: func() netlink.Link { l := deviceCompatibleLink(); l.VxlanId = 2; l.HardwareAddr = nil; return l },
			spec:     deviceNoSpecMAC, wantMAC: DefaultDeviceMAC(1, deviceTestLocal), wantMTU: 1450,
			writes: []string{"link del flannel.1", "link add flannel.1", "link set up flannel.1"},
			log:    "recreated device: VNI 2 != 1"},
		{name: "adopt keeps the device MAC over the spec MAC",
			existing: func() netlink.Link { return deviceCompatibleLink() }, spec: func(s *DeviceSpec) { s.MAC = deviceSpecMAC },
			wantMAC: deviceOldMAC, wantMTU: 1450, log: "adopted existing device"},
		{name: "adopt a device with non-default port and learning",
			existing: func() netlink.Link { l := deviceCompatibleLink(); l.Port = 4789; l.Learning = true; return l },
			spec:     func(s *DeviceSpec) { s.Port = 4789; s.Learning = true },
			wantMAC:  deviceOldMAC, wantMTU: 1450, log: "adopted existing device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newFakeDeviceKernel()
			if tt.existing != nil {
				k.put(tt.existing())
			}
			spec := deviceBaseSpec()
			if tt.spec != nil {
				tt.spec(&spec)
			}
			var logs bytes.Buffer
			dev, err := EnsureDevice(k, spec, deviceTestLogger(&logs))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(k.writes, tt.writes) {
				t.Errorf("writes = %q, want %q", k.writes, tt.writes)
			}
			if !strings.Contains(logs.String(), tt.log) {
				t.Errorf("log lacks %q:\n%s", tt.log, logs.String())
			}
			got, err := k.LinkByName("flannel.1")
			if err != nil {
				t.Fatal(err)
			}
			checkEnsuredDevice(t, dev, got, spec, tt.wantMAC, tt.wantMTU)
		})
	}
}

// checkEnsuredDevice compares the returned Device and the kernel's link with the
// expectations.
func checkEnsuredDevice(t *testing.T, dev Device, got netlink.Link, spec DeviceSpec, mac net.HardwareAddr, mtu int) {
	t.Helper()
	vx, ok := got.(*netlink.Vxlan)
	if !ok {
		t.Fatalf("kernel has %T, want vxlan", got)
	}
	if dev.Name != "flannel.1" || dev.Index != vx.Index || dev.VNI != 1 || dev.LocalIP != deviceTestLocal {
		t.Errorf("device = %+v, kernel index %d", dev, vx.Index)
	}
	if dev.MAC.String() != mac.String() || vx.HardwareAddr.String() != mac.String() {
		t.Errorf("MAC: device %s, kernel %s, want %s", dev.MAC, vx.HardwareAddr, mac)
	}
	if dev.MTU != mtu || vx.MTU != mtu {
		t.Errorf("MTU: device %d, kernel %d, want %d", dev.MTU, vx.MTU, mtu)
	}
	if vx.Flags&net.FlagUp == 0 || vx.Learning != spec.Learning || vx.VtepDevIndex != deviceTestExtIndex ||
		!vx.SrcAddr.Equal(net.IP(deviceTestLocal.AsSlice())) || vx.GBP != spec.GBP {
		t.Errorf("kernel device = %+v", vx)
	}
	if want := cmp.Or(spec.Port, 8472); vx.Port != want {
		t.Errorf("port %d, want %d", vx.Port, want)
	}
}

func TestEnsureDeviceRejectsBadSpec(t *testing.T) {
	tests := []struct {
		name  string
		spec  func(*DeviceSpec)
		field string
	}{
		{"IPv6 local, MTU below IPv6's minimum", func(s *DeviceSpec) { s.LocalIP = netip.MustParseAddr("2001:db8::1"); s.MTU = 1279 }, "MTU 1279 below 1280"},
		{"missing local", func(s *DeviceSpec) { s.LocalIP = netip.Addr{} }, "LocalIP"},
		{"negative VNI", func(s *DeviceSpec) { s.VNI = -1 }, "VNI -1"},
		{"VNI too large", func(s *DeviceSpec) { s.VNI = 1 << 24 }, "VNI 16777216"},
		{"port too large", func(s *DeviceSpec) { s.Port = 70000 }, "Port 70000"},
		{"no ext link", func(s *DeviceSpec) { s.ExtLinkIndex = 0 }, "ExtLinkIndex 0"},
		{"unknown ext link", func(s *DeviceSpec) { s.ExtLinkIndex = 99 }, "ExtLinkIndex 99"},
		{"multicast MAC", func(s *DeviceSpec) { s.MAC = deviceMustMAC("01:00:5e:00:00:01") }, "MAC"},
		{"MTU too small", func(s *DeviceSpec) { s.MTU = 40 }, "MTU 40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newFakeDeviceKernel()
			spec := deviceBaseSpec()
			tt.spec(&spec)
			_, err := EnsureDevice(k, spec, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("err = %v, want one naming %q", err, tt.field)
			}
			if len(k.writes) != 0 {
				t.Errorf("writes after a rejected spec: %q", k.writes)
			}
		})
	}
}

func TestEnsureDeviceAddress(t *testing.T) {
	own := netip.MustParsePrefix("10.244.99.0/24")
	network := netip.MustParsePrefix("10.244.0.0/16")
	tests := []struct {
		name   string
		before []string
		after  []string
		writes []string
	}{
		{"add when empty", nil, []string{"10.244.99.0/32"}, []string{"addr add 10.244.99.0/32"}},
		{"no writes when right", []string{"10.244.99.0/32"}, []string{"10.244.99.0/32"}, nil},
		{"remove stale inside Network, keep others",
			[]string{"10.244.5.0/32", "192.168.7.1/24", "10.9.0.1/32"},
			[]string{"192.168.7.1/24", "10.9.0.1/32", "10.244.99.0/32"},
			[]string{"addr del 10.244.5.0/32", "addr add 10.244.99.0/32"}},
		{"replace same address with wrong prefix",
			[]string{"10.244.99.0/24"}, []string{"10.244.99.0/32"},
			[]string{"addr del 10.244.99.0/24", "addr add 10.244.99.0/32"}},
		{"keep right, remove stale",
			[]string{"10.244.99.0/32", "10.244.1.0/32"}, []string{"10.244.99.0/32"},
			[]string{"addr del 10.244.1.0/32"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newFakeDeviceKernel()
			idx := k.put(deviceCompatibleLink())
			for _, a := range tt.before {
				addr, err := netlink.ParseAddr(a)
				if err != nil {
					t.Fatal(err)
				}
				k.addrs[idx] = append(k.addrs[idx], *addr)
			}
			dev := Device{Name: "flannel.1", Index: idx}
			log := slog.New(slog.DiscardHandler)
			if err := EnsureDeviceAddress(k, dev, own, network, log); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(k.writes, tt.writes) {
				t.Errorf("writes = %q, want %q", k.writes, tt.writes)
			}
			var after []string
			for _, a := range k.addrs[idx] {
				after = append(after, a.IPNet.String())
			}
			if !slices.Equal(after, tt.after) {
				t.Errorf("addresses = %q, want %q", after, tt.after)
			}
			k.writes = nil
			if err := EnsureDeviceAddress(k, dev, own, network, log); err != nil || k.writes != nil {
				t.Errorf("second call: err %v, writes %q; want neither", err, k.writes)
			}
		})
	}
}

func TestEnsureDeviceAddressRejects(t *testing.T) {
	network := netip.MustParsePrefix("10.244.0.0/16")
	tests := []struct {
		name string
		own  string
		dev  Device
		want string
	}{
		{"own outside Network", "10.9.1.0/24", Device{Name: "flannel.1", Index: 3}, "not inside Network"},
		{"own IPv6", "2001:db8::/64", Device{Name: "flannel.1", Index: 3}, "not inside Network"},
		{"device gone", "10.244.1.0/24", Device{Name: "flannel.1", Index: 42}, "list addresses of flannel.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newFakeDeviceKernel()
			k.put(deviceCompatibleLink())
			err := EnsureDeviceAddress(k, tt.dev, netip.MustParsePrefix(tt.own), network, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEnsureDeviceAddressRejectsOtherFamily(t *testing.T) {
	k := newFakeDeviceKernel()
	k.put(deviceCompatibleLink())
	dev := Device{Name: "flannel.1", Index: 3, LocalIP: netip.MustParseAddr("192.0.2.1")}
	err := EnsureDeviceAddress(k, dev, netip.MustParsePrefix("fd00:10:244:1::/64"), netip.MustParsePrefix("fd00:10:244::/56"), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "not of the family of flannel.1") {
		t.Fatalf("err = %v, want the family named", err)
	}
}

func TestDeviceName(t *testing.T) {
	for vni, want := range map[int]string{1: "flannel.1", 0: "flannel.0", 4096: "flannel.4096"} {
		if got := DeviceName(vni); got != want {
			t.Errorf("DeviceName(%d) = %q, want %q", vni, got, want)
		}
	}
	if got := DeviceNameV6(1); got != "flannel-v6.1" {
		t.Errorf("DeviceNameV6(1) = %q, want flannel-v6.1", got)
	}
}
