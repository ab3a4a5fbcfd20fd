package backendtest

import (
	"errors"
	"net"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NeighList implements backend.Kernel. family unix.AF_BRIDGE lists FDB
// entries (one Neigh per remote destination, like the kernel), another
// family lists neighbours of that family, 0 lists both. linkIndex 0 means
// every link. An injected netlink.ErrDumpInterrupted returns the first half
// of the result together with the error, as the real handle may.
func (k *FakeKernel) NeighList(linkIndex, family int) ([]netlink.Neigh, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	op := OpNeighList
	if family == unix.AF_BRIDGE {
		op = OpFDBList
	}
	k.counts[op]++
	err := k.check(op, "")
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, err
	}
	var out []netlink.Neigh
	if family != unix.AF_BRIDGE {
		out = k.listNeighs(linkIndex, family)
	}
	if family == unix.AF_BRIDGE || family == 0 {
		out = append(out, k.listFDB(linkIndex)...)
	}
	if err != nil {
		return out[:len(out)/2], err
	}
	return out, nil
}

func (k *FakeKernel) listNeighs(linkIndex, family int) []netlink.Neigh {
	out := make([]netlink.Neigh, 0, len(k.neighs))
	for key, n := range k.neighs {
		if linkIndex != 0 && key.link != linkIndex {
			continue
		}
		if family != 0 && n.Family != family {
			continue
		}
		out = append(out, n)
	}
	return out
}

func (k *FakeKernel) listFDB(linkIndex int) []netlink.Neigh {
	out := make([]netlink.Neigh, 0, len(k.fdb))
	for key, e := range k.fdb {
		if linkIndex != 0 && key.link != linkIndex {
			continue
		}
		for _, r := range e.remotes {
			out = append(out, netlink.Neigh{
				LinkIndex:    key.link,
				Family:       unix.AF_BRIDGE,
				State:        r.state,
				Flags:        r.flags,
				IP:           r.ip,
				HardwareAddr: e.mac,
				VNI:          r.vni,
			})
		}
	}
	return out
}

// NeighSet implements backend.Kernel: `ip neigh replace` for IP families,
// `bridge fdb replace ... self` for AF_BRIDGE (the first remote of an
// existing entry is replaced unless the destination is already there).
func (k *FakeKernel) NeighSet(neigh *netlink.Neigh) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if neigh.Family == unix.AF_BRIDGE {
		return k.fdbSet(neigh)
	}
	k.counts[OpNeighSet]++
	if err := k.fault(OpNeighSet, neigh.IP); err != nil {
		return err
	}
	if !k.hasLink(neigh.LinkIndex) {
		return unix.ENODEV
	}
	addr := addrOf(neigh.IP)
	if !addr.IsValid() {
		return unix.EINVAL
	}
	stored := netlink.Neigh{
		LinkIndex:    neigh.LinkIndex,
		Family:       familyOf(neigh),
		State:        neigh.State,
		Flags:        neigh.Flags,
		IP:           cloneIP(neigh.IP),
		HardwareAddr: slices.Clone(neigh.HardwareAddr),
	}
	k.neighs[neighKey{link: neigh.LinkIndex, ip: addr}] = stored
	k.notifyNeigh(unix.RTM_NEWNEIGH, stored)
	return nil
}

// NeighDel implements backend.Kernel. FDB deletes need the destination
// (the real handle always sends NDA_DST, empty when IP is nil, which the
// VXLAN driver rejects with EAFNOSUPPORT).
func (k *FakeKernel) NeighDel(neigh *netlink.Neigh) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if neigh.Family == unix.AF_BRIDGE {
		return k.fdbDel(neigh)
	}
	k.counts[OpNeighDel]++
	if err := k.fault(OpNeighDel, neigh.IP); err != nil {
		return err
	}
	key := neighKey{link: neigh.LinkIndex, ip: addrOf(neigh.IP)}
	stored, ok := k.neighs[key]
	if !ok {
		return unix.ENOENT
	}
	delete(k.neighs, key)
	k.notifyNeigh(unix.RTM_DELNEIGH, stored)
	return nil
}

func (k *FakeKernel) fdbSet(neigh *netlink.Neigh) error {
	k.counts[OpFDBSet]++
	if err := k.fault(OpFDBSet, neigh.HardwareAddr); err != nil {
		return err
	}
	if !k.hasLink(neigh.LinkIndex) {
		return unix.ENODEV
	}
	mac, ok := macKey(neigh.HardwareAddr)
	dst := addrOf(neigh.IP)
	if !ok || !dst.IsValid() || neigh.State&(netlink.NUD_PERMANENT|netlink.NUD_REACHABLE) == 0 {
		return unix.EINVAL
	}
	remote := fdbRemote{dst: dst, state: neigh.State, flags: neigh.Flags | netlink.NTF_SELF, vni: neigh.VNI, ip: cloneIP(neigh.IP)}
	key := fdbKey{link: neigh.LinkIndex, mac: mac}
	e, ok := k.fdb[key]
	if !ok {
		e = &fdbEntry{mac: slices.Clone(neigh.HardwareAddr), remotes: []fdbRemote{remote}}
		k.fdb[key] = e
		k.notifyFDB(unix.RTM_NEWNEIGH, neigh.LinkIndex, e.mac, remote)
		return nil
	}
	defer k.notifyFDB(unix.RTM_NEWNEIGH, neigh.LinkIndex, e.mac, remote)
	for i := range e.remotes {
		if e.remotes[i].dst == dst && e.remotes[i].vni == remote.vni {
			e.remotes[i] = remote
			return nil
		}
	}
	e.remotes[0] = remote
	return nil
}

func (k *FakeKernel) fdbDel(neigh *netlink.Neigh) error {
	k.counts[OpFDBDel]++
	if err := k.fault(OpFDBDel, neigh.HardwareAddr); err != nil {
		return err
	}
	dst := addrOf(neigh.IP)
	if !dst.IsValid() {
		return unix.EAFNOSUPPORT
	}
	mac, _ := macKey(neigh.HardwareAddr)
	key := fdbKey{link: neigh.LinkIndex, mac: mac}
	e, ok := k.fdb[key]
	if !ok {
		return unix.ENOENT
	}
	i := slices.IndexFunc(e.remotes, func(r fdbRemote) bool { return r.dst == dst })
	if i < 0 {
		return unix.ENOENT
	}
	k.notifyFDB(unix.RTM_DELNEIGH, neigh.LinkIndex, e.mac, e.remotes[i])
	e.remotes = slices.Delete(e.remotes, i, i+1)
	if len(e.remotes) == 0 {
		delete(k.fdb, key)
	}
	return nil
}

// AppendFDB adds one more remote destination to an FDB entry, like
// `bridge fdb append`; it is not counted as a reconciler write.
func (k *FakeKernel) AppendFDB(linkIndex int, mac net.HardwareAddr, dst net.IP) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, _ := macKey(mac)
	remote := fdbRemote{dst: addrOf(dst), state: netlink.NUD_PERMANENT, flags: netlink.NTF_SELF, ip: cloneIP(dst)}
	e, ok := k.fdb[fdbKey{link: linkIndex, mac: key}]
	if !ok {
		e = &fdbEntry{mac: slices.Clone(mac)}
		k.fdb[fdbKey{link: linkIndex, mac: key}] = e
	}
	e.remotes = append(e.remotes, remote)
	k.notifyFDB(unix.RTM_NEWNEIGH, linkIndex, e.mac, remote)
}

func familyOf(neigh *netlink.Neigh) int {
	if neigh.Family != 0 {
		return neigh.Family
	}
	if neigh.IP.To4() != nil {
		return unix.AF_INET
	}
	return unix.AF_INET6
}
