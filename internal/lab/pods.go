package lab

import (
	"context"
	"fmt"
	"slices"
)

// PodBridge is the node bridge the pods attach to: the bridge plugin's
// default name, as under flannel.
const PodBridge = "cni0"

// AddPods reads n's subnet file and creates Options.PodsPerNode pod
// namespaces on n, each attached by the real CNI chain: loopback, then
// kube-flannel's conflist (overlayd as the flannel plugin delegating to
// bridge and host-local, then portmap), run inside the node's namespace
// with CNI_COMMAND=ADD. host-local hands out the lease's addresses in
// order, so pod j gets host number 2+j. Calling it again adds that many
// more pods.
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
	path, err := l.cniPath()
	if err != nil {
		return fmt.Errorf("add pods to %s: %w", n.Name, err)
	}
	for j := first; j < first+count; j++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("add pods to %s: %w", n.Name, err)
		}
		pod, err := l.addPod(ctx, n, path, j, nil)
		if err != nil {
			return fmt.Errorf("add pod %d to %s: %w", j, n.Name, err)
		}
		n.Pods = append(n.Pods, pod)
	}
	return nil
}

// checkPodRoom: pod j takes host number 2+j; the broadcast address is
// the last one. An IPv6-only subnet has room to spare.
func checkPodRoom(env SubnetEnv, pods int) error {
	if !env.Subnet.IsValid() {
		return nil
	}
	hosts := 1<<(32-env.Subnet.Bits()) - 3 // network, gateway, broadcast
	if pods > hosts {
		return fmt.Errorf("%d pods do not fit in %s (room for %d)", pods, env.Lease(), max(hosts, 0))
	}
	return nil
}

// AddPodWithPorts adds one pod to n, as AddPods does, with host ports
// that the portmap plugin forwards from the node's addresses to the pod.
func (l *Lab) AddPodWithPorts(ctx context.Context, n *Node, ports []PortMapping) (*Pod, error) {
	env, err := ReadSubnetEnv(n.SubnetFile)
	if err != nil {
		return nil, fmt.Errorf("add pod to %s: %w", n.Name, err)
	}
	n.Subnet = env
	j := len(n.Pods)
	if err := checkPodRoom(env, j+1); err != nil {
		return nil, fmt.Errorf("add pod to %s: %w", n.Name, err)
	}
	path, err := l.cniPath()
	if err != nil {
		return nil, fmt.Errorf("add pod to %s: %w", n.Name, err)
	}
	pod, err := l.addPod(ctx, n, path, j, ports)
	if err != nil {
		return nil, fmt.Errorf("add pod %d to %s: %w", j, n.Name, err)
	}
	n.Pods = append(n.Pods, pod)
	return pod, nil
}

func (l *Lab) addPod(ctx context.Context, n *Node, path string, j int, ports []PortMapping) (*Pod, error) {
	ns, err := l.createNS(fmt.Sprintf("n%dp%d", n.Index, j))
	if err != nil {
		return nil, err
	}
	call := cniCall{node: n, command: "ADD", id: ns, netns: ns, ifName: podIfName, path: path}
	result, err := call.add(ctx, cniPlugins(n, ports))
	if err != nil {
		return nil, err
	}
	ip, ip6, err := resultIPs(result)
	if err != nil {
		return nil, err
	}
	return &Pod{
		Name:      fmt.Sprintf("%s/pod%d", n.Name, j),
		Node:      n.Name,
		NS:        ns,
		IP:        ip,
		IP6:       ip6,
		CNIResult: result,
		Ports:     ports,
	}, nil
}

// RemovePod releases p with CNI_COMMAND=DEL through the same chain,
// backwards (portmap, flannel, loopback), and drops it from n.Pods. The
// namespace itself stays until Close.
func (l *Lab) RemovePod(ctx context.Context, n *Node, p *Pod) error {
	path, err := l.cniPath()
	if err != nil {
		return fmt.Errorf("remove pod %s: %w", p.Name, err)
	}
	call := cniCall{node: n, command: "DEL", id: p.NS, netns: p.NS, ifName: podIfName, path: path}
	if err := call.del(ctx, cniPlugins(n, p.Ports), p.CNIResult); err != nil {
		return fmt.Errorf("remove pod %s: %w", p.Name, err)
	}
	n.Pods = slices.DeleteFunc(n.Pods, func(q *Pod) bool { return q == p })
	return nil
}

// AllPods lists every pod of every node, node by node.
func (l *Lab) AllPods() []*Pod {
	var pods []*Pod
	for _, n := range l.Nodes {
		pods = append(pods, n.Pods...)
	}
	return pods
}
