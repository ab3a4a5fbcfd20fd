// Package benchns makes the scratch namespaces the benchmarks install
// kernel entries into: a fresh network namespace with an underlay veth
// (ul0) and the same VXLAN device overlayd creates (flannel.1, built by
// backend.EnsureDevice), so that timings compare like with like.
package benchns

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// Addresses of the scratch underlay (TEST-NET-1, inside the namespace only).
var (
	UnderlayIP = netip.MustParseAddr("192.0.2.10")
	underlay   = netip.PrefixFrom(UnderlayIP, 24)
	// UnderlayIP6 is ul0's IPv6 address in a dual-stack namespace (NewDual).
	UnderlayIP6 = netip.MustParseAddr("2001:db8:fe::10")
	underlay6   = netip.PrefixFrom(UnderlayIP6, 64)
)

const (
	underlayName = "ul0"
	underlayPeer = "ul0p"
	underlayMTU  = 1500
	// VNI is the flannel default; the device is flannel.1.
	VNI = 1
)

// VXLANNamespace is a scratch namespace holding ul0 and flannel.1 (and
// flannel-v6.1, NewDual).
type VXLANNamespace struct {
	Name   string
	Device backend.Device
	// Device6 is flannel-v6.1 over ul0's IPv6 address (NewDual only).
	Device6 backend.Device
	Handle  *netlink.Handle
}

// New creates the namespace (named after tag) with its devices. Close it.
func New(tag string) (*VXLANNamespace, error) {
	return newNS(tag, false)
}

// NewDual is New with IPv6 on ul0 and flannel-v6.1 as well, the devices
// of a dual-stack node.
func NewDual(tag string) (*VXLANNamespace, error) {
	return newNS(tag, true)
}

func newNS(tag string, dual bool) (*VXLANNamespace, error) {
	name := netnsutil.UniqueName(tag)
	if err := netnsutil.Create(name); err != nil {
		return nil, err
	}
	v := &VXLANNamespace{Name: name}
	err := v.build()
	if err == nil && dual {
		err = v.buildV6()
	}
	if err != nil {
		return nil, errors.Join(err, v.Close())
	}
	return v, nil
}

// buildV6 adds ul0's IPv6 address (no duplicate address detection) and
// flannel-v6.1.
func (v *VXLANNamespace) buildV6() error {
	ext, err := v.Handle.LinkByName(underlayName)
	if err != nil {
		return fmt.Errorf("in netns %s: find %s: %w", v.Name, underlayName, err)
	}
	addr := &netlink.Addr{IPNet: netipPrefixToIPNet(underlay6), Flags: unix.IFA_F_NODAD}
	if err := v.Handle.AddrAdd(ext, addr); err != nil {
		return fmt.Errorf("in netns %s: add %s to %s: %w", v.Name, underlay6, underlayName, err)
	}
	spec := backend.DeviceSpec{VNI: VNI, ExtLinkIndex: ext.Attrs().Index, LocalIP: UnderlayIP6}
	dev, err := backend.EnsureDevice(v.Handle, spec, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("in netns %s: %w", v.Name, err)
	}
	v.Device6 = dev
	return nil
}

func (v *VXLANNamespace) build() error {
	h, err := netnsutil.Handle(v.Name)
	if err != nil {
		return err
	}
	v.Handle = h
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU = underlayName, underlayMTU
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: underlayPeer, PeerMTU: underlayMTU}); err != nil {
		return fmt.Errorf("in netns %s: add veth %s: %w", v.Name, underlayName, err)
	}
	ext, err := v.upWithAddr()
	if err != nil {
		return err
	}
	spec := backend.DeviceSpec{VNI: VNI, ExtLinkIndex: ext.Attrs().Index, LocalIP: UnderlayIP}
	dev, err := backend.EnsureDevice(h, spec, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("in netns %s: %w", v.Name, err)
	}
	v.Device = dev
	return nil
}

// upWithAddr brings both veth ends up and addresses ul0.
func (v *VXLANNamespace) upWithAddr() (netlink.Link, error) {
	var ext netlink.Link
	for _, name := range []string{underlayName, underlayPeer} {
		l, err := v.Handle.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("in netns %s: find %s: %w", v.Name, name, err)
		}
		if err := v.Handle.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("in netns %s: set %s up: %w", v.Name, name, err)
		}
		if name == underlayName {
			ext = l
		}
	}
	addr := &netlink.Addr{IPNet: netipPrefixToIPNet(underlay)}
	if err := v.Handle.AddrAdd(ext, addr); err != nil {
		return nil, fmt.Errorf("in netns %s: add %s to %s: %w", v.Name, underlay, underlayName, err)
	}
	return ext, nil
}

// Close closes the handle and deletes the namespace with its entries.
func (v *VXLANNamespace) Close() error {
	if v.Handle != nil {
		v.Handle.Close()
		v.Handle = nil
	}
	if v.Name == "" {
		return nil
	}
	FlushRoutesThenNexthops(v.Name)
	err := netnsutil.Delete(v.Name)
	v.Name = ""
	return err
}
