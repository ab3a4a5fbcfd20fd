package backend

// Tests of reading dumps into believed state; the socket and the wire
// format are tested in internal/nl.

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/backend/internal/nl"
)

// Golden message builders: the bytes the kernel sends, built by hand.

func ndmsgMsg(family uint8, ifindex int, state uint16, flags uint8, attrs ...[]byte) []byte {
	b := nl.NdmsgBytes(family, ifindex)
	binary.NativeEndian.PutUint16(b[8:], state)
	b[10] = flags
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func rtmsgMsg(family, dstLen, table, protocol, scope uint8, flags uint32, attrs ...[]byte) []byte {
	b := make([]byte, nl.RtmsgLen)
	b[0], b[1], b[4], b[5], b[6], b[7] = family, dstLen, table, protocol, scope, unix.RTN_UNICAST
	binary.NativeEndian.PutUint32(b[8:], flags)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func attr(typ uint16, val []byte) []byte  { return nl.AppendAttr(nil, typ, val) }
func attrU32(typ uint16, v uint32) []byte { return nl.AppendAttrU32(nil, typ, v) }
func ip4(s string) []byte {
	a := netip.MustParseAddr(s).As4()
	return a[:]
}

var (
	macA = []byte{0x0e, 0, 0, 0, 0, 0x0a}
	macB = []byte{0x0e, 0, 0, 0, 0, 0x0b}
)

func testOwnership() ownership {
	return ownership{family: unix.AF_INET, network: netip.MustParsePrefix("10.244.0.0/16"),
		ownSubnet: netip.MustParsePrefix("10.244.99.0/24"), link: 5, extLink: 2}
}

func TestAddNeighMsg(t *testing.T) {
	o := testOwnership()
	perm := uint16(netlink.NUD_PERMANENT)
	tests := []struct {
		name string
		msg  []byte
		want map[netip.Addr]believedNeigh
		err  bool
	}{
		{"ours", ndmsgMsg(unix.AF_INET, 5, perm, 0, attr(unix.NDA_DST, ip4("10.244.1.0")), attr(unix.NDA_LLADDR, macA)),
			map[netip.Addr]believedNeigh{netip.MustParseAddr("10.244.1.0"): {mac: [6]byte(macA), state: perm}}, false},
		{"no lladdr", ndmsgMsg(unix.AF_INET, 5, netlink.NUD_FAILED, 0, attr(unix.NDA_DST, ip4("10.244.2.0"))),
			map[netip.Addr]believedNeigh{netip.MustParseAddr("10.244.2.0"): {state: netlink.NUD_FAILED}}, false},
		{"other link", ndmsgMsg(unix.AF_INET, 6, perm, 0, attr(unix.NDA_DST, ip4("10.244.1.0"))), map[netip.Addr]believedNeigh{}, false},
		{"other family", ndmsgMsg(unix.AF_INET6, 5, perm, 0, attr(unix.NDA_DST, make([]byte, 16))), map[netip.Addr]believedNeigh{}, false},
		{"no dst", ndmsgMsg(unix.AF_INET, 5, perm, 0, attr(unix.NDA_LLADDR, macA)), map[netip.Addr]believedNeigh{}, false},
		{"short header", []byte{unix.AF_INET, 0, 0}, map[netip.Addr]believedNeigh{}, true},
		{"bad attr length", append(ndmsgMsg(unix.AF_INET, 5, perm, 0), 0xff, 0, 1, 0), map[netip.Addr]believedNeigh{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBelievedState()
			err := b.addNeighMsg(tc.msg, o)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			got := map[netip.Addr]believedNeigh{}
			for k, v := range b.neigh {
				got[k.addr()] = v
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("neigh = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAddFDBMsg(t *testing.T) {
	perm := uint16(netlink.NUD_PERMANENT)
	self := uint8(netlink.NTF_SELF)
	dst := func(s string) []byte { return attr(unix.NDA_DST, ip4(s)) }
	tests := []struct {
		name string
		msgs [][]byte
		want map[[6]byte]believedFDB
	}{
		{"ours", [][]byte{ndmsgMsg(unix.AF_BRIDGE, 5, perm, self, attr(unix.NDA_LLADDR, macA), dst("192.0.2.2"))},
			map[[6]byte]believedFDB{[6]byte(macA): newBelievedFDB(netip.MustParseAddr("192.0.2.2"), perm, self, 0)}},
		{"two destinations and a vni", [][]byte{
			ndmsgMsg(unix.AF_BRIDGE, 5, perm, self, attr(unix.NDA_LLADDR, macB), dst("192.0.2.2"), attrU32(unix.NDA_VNI, 7)),
			ndmsgMsg(unix.AF_BRIDGE, 5, perm, self, attr(unix.NDA_LLADDR, macB), dst("192.0.2.3")),
		}, map[[6]byte]believedFDB{[6]byte(macB): newBelievedFDB(netip.MustParseAddr("192.0.2.2"), perm, self, 7).
			withOthers([]netip.Addr{netip.MustParseAddr("192.0.2.3")})}},
		{"learned", [][]byte{ndmsgMsg(unix.AF_BRIDGE, 5, netlink.NUD_REACHABLE, self, attr(unix.NDA_LLADDR, macA), dst("192.0.2.2"))}, map[[6]byte]believedFDB{}},
		{"all-zero default", [][]byte{ndmsgMsg(unix.AF_BRIDGE, 5, perm, self, attr(unix.NDA_LLADDR, make([]byte, 6)), dst("192.0.2.2"))}, map[[6]byte]believedFDB{}},
		{"multicast", [][]byte{ndmsgMsg(unix.AF_BRIDGE, 5, perm, self, attr(unix.NDA_LLADDR, []byte{1, 0, 0x5e, 0, 0, 1}))}, map[[6]byte]believedFDB{}},
		{"other link", [][]byte{ndmsgMsg(unix.AF_BRIDGE, 9, perm, self, attr(unix.NDA_LLADDR, macA))}, map[[6]byte]believedFDB{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBelievedState()
			for _, m := range tc.msgs {
				if err := b.addFDBMsg(m, 5); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(b.fdb, tc.want) {
				t.Fatalf("fdb = %+v, want %+v", b.fdb, tc.want)
			}
		})
	}
}

func TestAddRouteMsg(t *testing.T) {
	o := testOwnership()
	main := uint8(unix.RT_TABLE_MAIN)
	boot := uint8(unix.RTPROT_BOOT)
	onlink := uint32(unix.RTNH_F_ONLINK)
	key := func(p string, prio int) routeKey { return routeKeyOf(netip.MustParsePrefix(p), prio) }
	gw := func(s string) addr16 { return addr16Of(netip.MustParseAddr(s)) }
	tests := []struct {
		name string
		msg  []byte
		want map[routeKey]believedRoute
	}{
		{"onlink on our device", rtmsgMsg(unix.AF_INET, 24, main, boot, 0, onlink,
			attr(unix.RTA_DST, ip4("10.244.1.0")), attr(unix.RTA_GATEWAY, ip4("10.244.1.0")), attrU32(unix.RTA_OIF, 5)),
			map[routeKey]believedRoute{key("10.244.1.0/24", 0): {link: 5, gw: gw("10.244.1.0"), onlink: true}}},
		{"metric and table attribute", rtmsgMsg(unix.AF_INET, 24, 0, boot, 0, 0,
			attr(unix.RTA_DST, ip4("10.244.2.0")), attrU32(unix.RTA_OIF, 5), attrU32(unix.RTA_PRIORITY, 50), attrU32(unix.RTA_TABLE, unix.RT_TABLE_MAIN)),
			map[routeKey]believedRoute{key("10.244.2.0/24", 50): {link: 5}}},
		{"direct routing via ext link", rtmsgMsg(unix.AF_INET, 24, main, boot, 0, 0,
			attr(unix.RTA_DST, ip4("10.244.3.0")), attr(unix.RTA_GATEWAY, ip4("192.0.2.3")), attrU32(unix.RTA_OIF, 2)),
			map[routeKey]believedRoute{key("10.244.3.0/24", 0): {link: 2, gw: gw("192.0.2.3")}}},
		{"ext link without gateway", rtmsgMsg(unix.AF_INET, 24, main, boot, 0, 0, attr(unix.RTA_DST, ip4("10.244.3.0")), attrU32(unix.RTA_OIF, 2)), map[routeKey]believedRoute{}},
		{"other table", rtmsgMsg(unix.AF_INET, 24, 100, boot, 0, 0, attr(unix.RTA_DST, ip4("10.244.4.0")), attrU32(unix.RTA_OIF, 5)), map[routeKey]believedRoute{}},
		{"kernel route", rtmsgMsg(unix.AF_INET, 24, main, unix.RTPROT_KERNEL, 0, 0, attr(unix.RTA_DST, ip4("10.244.4.0")), attrU32(unix.RTA_OIF, 5)), map[routeKey]believedRoute{}},
		{"cloned", rtmsgMsg(unix.AF_INET, 24, main, boot, 0, unix.RTM_F_CLONED, attr(unix.RTA_DST, ip4("10.244.4.0")), attrU32(unix.RTA_OIF, 5)), map[routeKey]believedRoute{}},
		{"the network itself", rtmsgMsg(unix.AF_INET, 16, main, boot, 0, 0, attr(unix.RTA_DST, ip4("10.244.0.0")), attrU32(unix.RTA_OIF, 5)), map[routeKey]believedRoute{}},
		{"own subnet", rtmsgMsg(unix.AF_INET, 24, main, boot, 0, 0, attr(unix.RTA_DST, ip4("10.244.99.0")), attrU32(unix.RTA_OIF, 5)), map[routeKey]believedRoute{}},
		{"outside the network", rtmsgMsg(unix.AF_INET, 24, main, boot, 0, 0, attr(unix.RTA_DST, ip4("10.245.1.0")), attrU32(unix.RTA_OIF, 5)), map[routeKey]believedRoute{}},
		{"default route", rtmsgMsg(unix.AF_INET, 0, main, boot, 0, 0, attr(unix.RTA_GATEWAY, ip4("192.0.2.254")), attrU32(unix.RTA_OIF, 5)), map[routeKey]believedRoute{}},
		{"other device", rtmsgMsg(unix.AF_INET, 24, main, boot, 0, 0, attr(unix.RTA_DST, ip4("10.244.5.0")), attrU32(unix.RTA_OIF, 7)), map[routeKey]believedRoute{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBelievedState()
			if err := b.addRouteMsg(tc.msg, o); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(b.route, tc.want) {
				t.Fatalf("route = %+v, want %+v", b.route, tc.want)
			}
		})
	}
	if err := newBelievedState().addRouteMsg(make([]byte, 5), o); err == nil {
		t.Fatal("short route message: no error")
	}
}

// TestLeanDumpRetriesInterrupted: an interrupted attempt is discarded and
// the dump is repeated; maxDumpAttempts interruptions fail the dump.
func TestLeanDumpRetriesInterrupted(t *testing.T) {
	for _, tc := range []struct {
		interrupts int
		wantErr    bool
	}{{0, false}, {2, false}, {maxDumpAttempts, true}} {
		runs, resets := 0, 0
		err := leanDump(kindFDB, func() { resets++ }, func() error {
			runs++
			if runs <= tc.interrupts {
				return netlink.ErrDumpInterrupted
			}
			return nil
		})
		var de *dumpError
		if (err != nil) != tc.wantErr || (err != nil && (!errors.As(err, &de) || de.kind != kindFDB)) {
			t.Fatalf("%d interrupts: err %v", tc.interrupts, err)
		}
		if want := min(tc.interrupts+1, maxDumpAttempts); runs != want || resets != want {
			t.Fatalf("%d interrupts: %d runs, %d resets, want %d", tc.interrupts, runs, resets, want)
		}
	}
}
