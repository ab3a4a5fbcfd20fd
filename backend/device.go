package backend

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DeviceKernel is the part of *netlink.Handle (v1.3.1) that the device code
// uses; a *netlink.Handle bound to the node's namespace satisfies it as is.
type DeviceKernel interface {
	LinkByName(name string) (netlink.Link, error)
	LinkByIndex(index int) (netlink.Link, error)
	LinkAdd(link netlink.Link) error
	LinkDel(link netlink.Link) error
	LinkSetUp(link netlink.Link) error
	LinkSetMTU(link netlink.Link, mtu int) error
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	AddrAdd(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
}

const (
	// DeviceDefaultPort is the UDP port used when DeviceSpec.Port is 0: the
	// Linux VXLAN default that flannel relies on (not IANA's 4789). We set
	// it explicitly so the device does not depend on the vxlan module's
	// udp_port parameter and reads the same as flannel's (dstport 8472).
	DeviceDefaultPort = 8472
	// DeviceOverhead is what VXLAN over IPv4 adds to each frame: outer IP
	// (20) + UDP (8) + VXLAN (8) + inner Ethernet (14).
	DeviceOverhead = 50
	// DeviceOverheadV6 is the same over IPv6: the outer header is 40 bytes.
	DeviceOverheadV6 = 70
	deviceMaxVNI     = 1<<24 - 1
	minDeviceMTU     = 68   // IPv4 minimum
	minDeviceMTUv6   = 1280 // IPv6 minimum: the kernel disables IPv6 on a link below it
)

// DeviceSpec is the VXLAN device the node needs.
type DeviceSpec struct {
	VNI          int  // VXLAN id, 0..16777215
	Port         int  // UDP port; 0 means DeviceDefaultPort
	GBP          bool // group based policy extension
	Learning     bool // kernel FDB learning; off for flannel (entries come from leases)
	ExtLinkIndex int  // the external (underlay) interface
	// LocalIP is the external interface's own address (the bind address),
	// never the public address advertised in the lease: behind 1:1 NAT the
	// public address is not on the NIC and the kernel could not send from it.
	// Its family chooses the device: flannel.<VNI> over IPv4, flannel-v6.<VNI>
	// over IPv6 (docs/compatibility.md, "IPv6 and dual-stack").
	LocalIP netip.Addr
	// MTU is the device MTU. 0 means the external interface's MTU minus
	// DeviceOverhead (IPv4) or DeviceOverheadV6 (IPv6).
	MTU int
	// MAC is given to the device when it has to be created; nil means keep
	// the MAC of a device being recreated, else DefaultDeviceMAC.
	MAC net.HardwareAddr
	// MACSeed is mixed into a derived MAC (the advertised address), so that
	// cloned nodes sharing a machine-id and a private address differ.
	MACSeed []string
}

// Device is the VXLAN device as the kernel has it after EnsureDevice.
type Device struct {
	Name    string
	Index   int
	MAC     net.HardwareAddr
	MTU     int
	LocalIP netip.Addr
	VNI     int
}

// DeviceName is the flannel device name for a VNI: "flannel.<VNI>".
func DeviceName(vni int) string {
	return fmt.Sprintf("flannel.%d", vni)
}

// DeviceNameV6 is the flannel IPv6 device name for a VNI: "flannel-v6.<VNI>".
func DeviceNameV6(vni int) string {
	return fmt.Sprintf("flannel-v6.%d", vni)
}

// deviceNameFor names the device whose local address is local.
func deviceNameFor(vni int, local netip.Addr) string {
	if local.Is6() {
		return DeviceNameV6(vni)
	}
	return DeviceName(vni)
}

// EnsureDevice creates or adopts flannel.<VNI> and brings it to spec.
//
//   - A compatible existing device (vxlan, same VNI, link, local address,
//     port, GBP, learning) is adopted as it is: its MAC is what peers have
//     in their FDB, and recreating it would drop every entry on it.
//   - An incompatible one is deleted and recreated with the MAC it had
//     (unless spec.MAC is given), so peers' entries stay valid.
//   - A missing one is created with spec.MAC, or DefaultDeviceMAC.
//
// The MAC is set in the create request rather than afterwards, so udev's
// MACAddressPolicy=persistent cannot replace it. MTU and the up state are
// then fixed in place; neither needs a recreation.
func EnsureDevice(k DeviceKernel, spec DeviceSpec, log *slog.Logger) (Device, error) {
	spec, err := normalizeDeviceSpec(k, spec)
	if err != nil {
		return Device{}, err
	}
	link, err := obtainDevice(k, spec, log)
	if err != nil {
		return Device{}, err
	}
	if err := fixDeviceMTUAndUp(k, link, spec.MTU, log); err != nil {
		return Device{}, err
	}
	return Device{
		Name:    link.Attrs().Name,
		Index:   link.Attrs().Index,
		MAC:     link.Attrs().HardwareAddr,
		MTU:     spec.MTU,
		LocalIP: spec.LocalIP,
		VNI:     spec.VNI,
	}, nil
}

// obtainDevice creates, adopts or recreates the device and logs which.
func obtainDevice(k DeviceKernel, spec DeviceSpec, log *slog.Logger) (netlink.Link, error) {
	name := deviceNameFor(spec.VNI, spec.LocalIP)
	link, err := findDevice(k, name)
	if err != nil {
		return nil, err
	}
	if link == nil {
		mac := spec.MAC
		if mac == nil {
			mac = DefaultDeviceMAC(spec.VNI, spec.LocalIP, spec.MACSeed...)
		}
		if link, err = createDevice(k, spec, mac); err != nil {
			return nil, err
		}
		log.Info("created device", "device", name, "mac", link.Attrs().HardwareAddr.String(),
			"vni", spec.VNI, "local", spec.LocalIP, "port", spec.Port)
		return link, nil
	}
	reason := deviceMismatch(link, spec)
	if reason == "" {
		log.Info("adopted existing device", "device", name, "mac", link.Attrs().HardwareAddr.String(),
			"index", link.Attrs().Index)
		return link, nil
	}
	if link, err = recreateDevice(k, link, spec); err != nil {
		return nil, err
	}
	log.Info("recreated device: "+reason, "device", name, "mac", link.Attrs().HardwareAddr.String())
	return link, nil
}

// normalizeDeviceSpec validates spec and fills the defaults (port, MTU).
// Errors name the field and value at fault.
func normalizeDeviceSpec(k DeviceKernel, spec DeviceSpec) (DeviceSpec, error) {
	spec.LocalIP = spec.LocalIP.Unmap()
	switch {
	case spec.VNI < 0 || spec.VNI > deviceMaxVNI:
		return spec, fmt.Errorf("device spec: VNI %d out of range 0..%d", spec.VNI, deviceMaxVNI)
	case spec.Port < 0 || spec.Port > 65535:
		return spec, fmt.Errorf("device spec: Port %d out of range 0..65535", spec.Port)
	case !spec.LocalIP.IsValid():
		return spec, fmt.Errorf("device spec: LocalIP %q is not an IP address", spec.LocalIP)
	case spec.ExtLinkIndex <= 0:
		return spec, fmt.Errorf("device spec: ExtLinkIndex %d is not an interface index", spec.ExtLinkIndex)
	case spec.MAC != nil && !usableDeviceMAC(spec.MAC):
		return spec, fmt.Errorf("device spec: MAC %q is not a 6-byte unicast MAC", spec.MAC)
	}
	ext, err := k.LinkByIndex(spec.ExtLinkIndex)
	if err != nil {
		return spec, fmt.Errorf("device spec: ExtLinkIndex %d: %w", spec.ExtLinkIndex, err)
	}
	if spec.Port == 0 {
		spec.Port = DeviceDefaultPort
	}
	overhead, minMTU := DeviceOverhead, minDeviceMTU
	if spec.LocalIP.Is6() {
		overhead, minMTU = DeviceOverheadV6, minDeviceMTUv6
	}
	if spec.MTU == 0 {
		spec.MTU = ext.Attrs().MTU - overhead
	}
	if spec.MTU < minMTU {
		return spec, fmt.Errorf("device spec: MTU %d below %d (external interface %s has MTU %d)",
			spec.MTU, minMTU, ext.Attrs().Name, ext.Attrs().MTU)
	}
	return spec, nil
}

// findDevice returns the link called name, or nil when there is none.
func findDevice(k DeviceKernel, name string) (netlink.Link, error) {
	link, err := k.LinkByName(name)
	if deviceNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up device %s: %w", name, err)
	}
	return link, nil
}

// deviceNotFound recognises netlink's LinkNotFoundError and a bare ENODEV.
func deviceNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// deviceMismatch returns "" when link can be adopted for spec, else the
// first difference as "<field> <existing> != <wanted>". The fields are the
// ones that cannot be changed on a live vxlan device. FlowBased ("external")
// is checked too: such a device ignores the FDB entries peers rely on.
func deviceMismatch(link netlink.Link, spec DeviceSpec) string {
	vx, ok := link.(*netlink.Vxlan)
	if !ok {
		return fmt.Sprintf("type %s != vxlan", link.Type())
	}
	local, _ := netip.AddrFromSlice(vx.SrcAddr)
	local = local.Unmap()
	switch {
	case vx.VxlanId != spec.VNI:
		return fmt.Sprintf("VNI %d != %d", vx.VxlanId, spec.VNI)
	case vx.VtepDevIndex != spec.ExtLinkIndex:
		return fmt.Sprintf("link index %d != %d", vx.VtepDevIndex, spec.ExtLinkIndex)
	case local != spec.LocalIP:
		return fmt.Sprintf("local %s != %s", local, spec.LocalIP)
	case vx.Port != spec.Port:
		return fmt.Sprintf("port %d != %d", vx.Port, spec.Port)
	case vx.GBP != spec.GBP:
		return fmt.Sprintf("GBP %t != %t", vx.GBP, spec.GBP)
	case vx.Learning != spec.Learning:
		return fmt.Sprintf("learning %t != %t", vx.Learning, spec.Learning)
	case vx.FlowBased:
		return "external (flow based) != false"
	}
	return ""
}

// recreateDevice deletes the incompatible link and creates the device
// again, with spec.MAC if given, else the MAC the old link had (so peers'
// FDB and neighbour entries stay right), else DefaultDeviceMAC.
func recreateDevice(k DeviceKernel, old netlink.Link, spec DeviceSpec) (netlink.Link, error) {
	mac := spec.MAC
	if mac == nil && usableDeviceMAC(old.Attrs().HardwareAddr) {
		mac = old.Attrs().HardwareAddr
	}
	if mac == nil {
		mac = DefaultDeviceMAC(spec.VNI, spec.LocalIP, spec.MACSeed...)
	}
	if err := k.LinkDel(old); err != nil && !deviceNotFound(err) {
		return nil, fmt.Errorf("delete incompatible device %s: %w", old.Attrs().Name, err)
	}
	return createDevice(k, spec, mac)
}

// createDevice adds the vxlan link and reads it back, so the result carries
// what the kernel has (index, MAC, flags).
func createDevice(k DeviceKernel, spec DeviceSpec, mac net.HardwareAddr) (netlink.Link, error) {
	name := deviceNameFor(spec.VNI, spec.LocalIP)
	// TxQLen 0 as flannel's device has (ip shows no "qlen"); vxlan is a
	// noqueue device, so the figure only matters for looking the same.
	attrs := netlink.LinkAttrs{Name: name, MTU: spec.MTU, HardwareAddr: mac, TxQLen: 0}
	vx := &netlink.Vxlan{
		LinkAttrs:    attrs,
		VxlanId:      spec.VNI,
		VtepDevIndex: spec.ExtLinkIndex,
		SrcAddr:      net.IP(spec.LocalIP.AsSlice()),
		Port:         spec.Port,
		GBP:          spec.GBP,
		Learning:     spec.Learning,
	}
	if err := k.LinkAdd(vx); err != nil {
		return nil, fmt.Errorf("create device %s (vni %d, local %s, port %d, mac %s, mtu %d): %w",
			name, spec.VNI, spec.LocalIP, spec.Port, mac, spec.MTU, err)
	}
	link, err := k.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("read back created device %s: %w", name, err)
	}
	return link, nil
}

// fixDeviceMTUAndUp sets the MTU and the up flag when they differ; an
// adopted device that is already right sees no write.
func fixDeviceMTUAndUp(k DeviceKernel, link netlink.Link, mtu int, log *slog.Logger) error {
	a := link.Attrs()
	if a.MTU != mtu {
		if err := k.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("set MTU of %s from %d to %d: %w", a.Name, a.MTU, mtu, err)
		}
		log.Info("set device MTU", "device", a.Name, "from", a.MTU, "to", mtu)
	}
	if a.Flags&net.FlagUp == 0 {
		if err := k.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", a.Name, err)
		}
	}
	return nil
}

// EnsureDeviceAddress gives the device the address own.Addr()/32 (the
// lease's network address, as flannel does: the gateway of the onlink routes
// peers install towards this node; /128 for an IPv6 subnet on
// flannel-v6.<VNI>) and removes every other address of the family inside
// network from it: those are left over from an earlier lease and
// would attract traffic for a subnet this node no longer owns. Addresses
// outside network belong to someone else and are left alone. Nothing is
// written when the device is already right.
//
// The device is addressed by dev.Index: if it was recreated since
// EnsureDevice, the call fails and the caller runs EnsureDevice again.
func EnsureDeviceAddress(k DeviceKernel, dev Device, own netip.Prefix, network netip.Prefix, log *slog.Logger) error {
	if !own.IsValid() {
		return fmt.Errorf("device address: own subnet %s is not a prefix", own)
	}
	if own.Addr().Is4() != network.Addr().Is4() || !network.Contains(own.Addr()) {
		return fmt.Errorf("device address: own subnet %s is not inside Network %s", own, network)
	}
	if dev.LocalIP.IsValid() && dev.LocalIP.Is4() != own.Addr().Is4() {
		return fmt.Errorf("device address: own subnet %s is not of the family of %s (local %s)", own, dev.Name, dev.LocalIP)
	}
	link := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: dev.Name, Index: dev.Index}}
	family, bits := netlink.FAMILY_V4, 32
	if own.Addr().Is6() {
		family, bits = netlink.FAMILY_V6, 128
	}
	addrs, err := k.AddrList(link, family)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", dev.Name, err)
	}
	want := netip.PrefixFrom(own.Addr(), bits)
	present := false
	var errs []error
	for _, a := range addrs {
		p, ok := deviceAddrPrefix(a)
		switch {
		case !ok || !network.Contains(p.Addr()):
			continue
		case p == want:
			present = true
		default:
			if err := k.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("remove stale address %s from %s: %w", p, dev.Name, err))
				continue
			}
			log.Info("removed stale device address", "device", dev.Name, "address", p)
		}
	}
	if !present {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(want.Addr().AsSlice()), Mask: net.CIDRMask(bits, bits)}}
		if err := k.AddrAdd(link, addr); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add address %s to %s: %w", want, dev.Name, err))
		} else {
			log.Info("added device address", "device", dev.Name, "address", want)
		}
	}
	return errors.Join(errs...)
}

// deviceAddrPrefix converts a netlink address to a prefix; ok is false for
// anything but a plain IPv4 or IPv6 address.
func deviceAddrPrefix(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := a.Mask.Size()
	if ip.Is4In6() && bits == 128 {
		ones -= 96
	}
	ip = ip.Unmap()
	switch {
	case ip.Is4() && (bits == 32 || bits == 128):
	case ip.Is6() && bits == 128:
	default:
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(ip, ones), true
}
