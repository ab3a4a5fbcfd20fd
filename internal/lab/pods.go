package lab

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// PodBridge is the node bridge the pods attach to, as the CNI bridge
// plugin names it.
const PodBridge = "cni0"

// AddPods reads n's subnet file and, as the CNI bridge plugin would,
// creates the cni0 bridge (FLANNEL_SUBNET's address, FLANNEL_MTU) on the
// first call and Options.PodsPerNode pod namespaces, each with an eth0 at
// the next free address of the lease and a default route via cni0.
// Calling it again adds that many more pods.
func (l *Lab) AddPods(ctx context.Context, n *Node) error {
	env, err := ReadSubnetEnv(n.SubnetFile)
	if err != nil {
		return fmt.Errorf("add pods to %s: %w", n.Name, err)
	}
	n.Subnet = env
	first := len(n.Pods)
	count := l.opts.PodsPerNode
	if err := checkPodRoom(env, first+count); err != nil {
		return fmt.Errorf("add pods to %s: %w", n.Name, err)
	}
	if first == 0 {
		if err := addPodBridge(n, env); err != nil {
			return fmt.Errorf("add pods to %s: %w", n.Name, err)
		}
	}
	for j := first; j < first+count; j++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("add pods to %s: %w", n.Name, err)
		}
		pod, err := l.addPod(n, env, j)
		if err != nil {
			return fmt.Errorf("add pod %d to %s: %w", j, n.Name, err)
		}
		n.Pods = append(n.Pods, pod)
	}
	return nil
}

// checkPodRoom: pod j takes host number 2+j; the broadcast address is
// the last one.
func checkPodRoom(env SubnetEnv, pods int) error {
	hosts := 1<<(32-env.Subnet.Bits()) - 3 // network, gateway, broadcast
	if pods > hosts {
		return fmt.Errorf("%d pods do not fit in %s (room for %d)", pods, env.Lease(), max(hosts, 0))
	}
	return nil
}

func addPodBridge(n *Node, env SubnetEnv) error {
	return withLinks(n.NS, func(h *nsLinks) error {
		if err := h.addBridge(PodBridge, env.MTU); err != nil {
			return err
		}
		if err := h.addAddr(PodBridge, env.Subnet); err != nil {
			return err
		}
		return h.up(PodBridge)
	})
}

func (l *Lab) addPod(n *Node, env SubnetEnv, j int) (*Pod, error) {
	ns, err := l.createNS(fmt.Sprintf("n%dp%d", n.Index, j))
	if err != nil {
		return nil, err
	}
	pod := &Pod{
		Name: fmt.Sprintf("%s/pod%d", n.Name, j),
		Node: n.Name,
		NS:   ns,
		IP:   addToAddr(env.Lease().Addr(), uint32(2+j)),
	}
	hostEnd := fmt.Sprintf("veth%d", j)
	err = withLinks(n.NS, func(h *nsLinks) error {
		if err := h.addVeth(hostEnd, "eth0", ns, env.MTU); err != nil {
			return err
		}
		if err := h.enslave(hostEnd, PodBridge); err != nil {
			return err
		}
		return h.up(hostEnd)
	})
	if err != nil {
		return nil, err
	}
	err = withLinks(ns, func(h *nsLinks) error {
		if err := h.addAddr("eth0", netip.PrefixFrom(pod.IP, env.Subnet.Bits())); err != nil {
			return err
		}
		if err := h.up("eth0"); err != nil {
			return err
		}
		return h.defaultRoute(env.Gateway())
	})
	if err != nil {
		return nil, err
	}
	return pod, nil
}

func addToAddr(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+n)
	return netip.AddrFrom4(b)
}

// AllPods lists every pod of every node, node by node.
func (l *Lab) AllPods() []*Pod {
	var pods []*Pod
	for _, n := range l.Nodes {
		pods = append(pods, n.Pods...)
	}
	return pods
}
