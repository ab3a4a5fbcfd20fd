package main

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/overlayd/overlayd/bench/internal/fakepeers"
)

// annotationPrefix is flannel's default.
const annotationPrefix = "flannel.alpha.coreos.com/"

// createWorkers is how many Nodes are created at once.
const createWorkers = 32

// createNodes creates one Node per peer, named peer-<i>, with the peer's
// podCIDR and flannel's annotations, and with withStatus a kubelet-like
// status (which the status subresource takes).
func createNodes(ctx context.Context, cs kubernetes.Interface, peers []fakepeers.Peer, withStatus bool) error {
	work := make(chan int)
	errs := make(chan error, createWorkers)
	var wg sync.WaitGroup
	for range createWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := createNode(ctx, cs, fmt.Sprintf("peer-%05d", i), peers[i], withStatus); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := range peers {
		select {
		case work <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

func createNode(ctx context.Context, cs kubernetes.Interface, name string, p fakepeers.Peer, withStatus bool) error {
	cidr := p.Subnet.String()
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: nodeLabels(name), Annotations: map[string]string{
			annotationPrefix + "kube-subnet-manager":                 "true",
			annotationPrefix + "backend-type":                        "vxlan",
			annotationPrefix + "backend-data":                        fmt.Sprintf(`{"VNI":1,"VtepMAC":"%s"}`, p.HardwareAddr()),
			annotationPrefix + "public-ip":                           p.PublicIP.String(),
			"node.alpha.kubernetes.io/ttl":                           "0",
			"volumes.kubernetes.io/controller-managed-attach-detach": "true",
		}},
		Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}},
	}
	created, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	if !withStatus {
		return nil
	}
	created.Status = kubeletStatus(name, p)
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status of node %s: %w", name, err)
	}
	return nil
}

func nodeLabels(name string) map[string]string {
	return map[string]string{
		"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
		"beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
	}
}

// kubeletStatus is about what a kubelet reports: conditions, addresses,
// capacity, node info and a few images (real nodes often list dozens).
func kubeletStatus(name string, p fakepeers.Peer) corev1.NodeStatus {
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	res := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16392068Ki"),
		corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("101445540Ki"),
	}
	st := corev1.NodeStatus{
		Capacity: res, Allocatable: res,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "FlannelIsUp", "Flannel is running on this node"),
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: p.PublicIP.String()}, {Type: corev1.NodeHostName, Address: name}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID: "0123456789abcdef0123456789abcdef", SystemUUID: "01234567-89ab-cdef-0123-456789abcdef",
			BootID: "fedcba98-7654-3210-fedc-ba9876543210", KernelVersion: "6.1.0-28-cloud-amd64",
			OSImage: "Debian GNU/Linux 12 (bookworm)", ContainerRuntimeVersion: "containerd://1.7.24",
			KubeletVersion: "v1.34.4", KubeProxyVersion: "v1.34.4", OperatingSystem: "linux", Architecture: "amd64",
		},
	}
	for i := range 10 {
		st.Images = append(st.Images, corev1.ContainerImage{
			Names: []string{
				fmt.Sprintf("registry.k8s.io/example/image-%d@sha256:%064x", i, i+1),
				fmt.Sprintf("registry.k8s.io/example/image-%d:v1.%d.0", i, i),
			},
			SizeBytes: int64(20_000_000 + i*1_000_000),
		})
	}
	return st
}
