package lab

import (
	"fmt"
	"net/netip"
)

// firstHostHost is the host number of the first extra host on the hub
// segment (AddHost); nodes use 10 upwards, the hub 254.
const firstHostHost = 200

// maxHosts bounds AddHost: host numbers 200..239.
const maxHosts = 40

// Host is an extra namespace plugged into the hub bridge, next to the
// nodes: a place for servers the nodes reach directly on the underlay
// (the members of an etcd cluster, for instance), each with a network
// stack of its own so that a test can cut it off with iptables inside.
type Host struct {
	Name string // "host0", ...
	NS   string
	// IP is the host's address on the hub segment (192.0.2.200+k on Flat,
	// 203.0.113.200+k on NAT).
	IP netip.Addr
}

// AddHost creates the next host: a namespace whose eth0 sits on the hub
// bridge. Lab.Close deletes it, and every process left inside.
func (l *Lab) AddHost() (*Host, error) {
	l.mu.Lock()
	k := l.hosts
	l.hosts++
	l.mu.Unlock()
	if k >= maxHosts {
		return nil, fmt.Errorf("add host: at most %d hosts per lab", maxHosts)
	}
	ns, err := l.createNS(fmt.Sprintf("h%d", k))
	if err != nil {
		return nil, err
	}
	h := &Host{Name: fmt.Sprintf("host%d", k), NS: ns, IP: hostAddr(l.HubIP, firstHostHost+k)}
	peer := fmt.Sprintf("h%d", k)
	err = withLinks(ns, func(nl *nsLinks) error {
		if err := nl.addVeth("eth0", peer, l.Hub, underlayMTU); err != nil {
			return err
		}
		if err := nl.addAddr("eth0", prefix24(h.IP)); err != nil {
			return err
		}
		return nl.up("eth0", "lo")
	})
	if err == nil {
		err = plugIntoBridge(l.Hub, peer, hubBridge)
	}
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return h, nil
}
