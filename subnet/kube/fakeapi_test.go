package kube

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
)

// fakeAPI is Client over client-go's fake clientset, whose tracker and
// recorded actions the tests use.
type fakeAPI struct{ cs *fake.Clientset }

var _ Client = fakeAPI{}

func (f fakeAPI) GetNode(ctx context.Context, name string) (*corev1.Node, error) {
	return f.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
}

func (f fakeAPI) ListNodes(ctx context.Context, opts metav1.ListOptions) (*corev1.NodeList, error) {
	return f.cs.CoreV1().Nodes().List(ctx, opts)
}

func (f fakeAPI) WatchNodes(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return f.cs.CoreV1().Nodes().Watch(ctx, opts)
}

func (f fakeAPI) PatchNodeStatus(ctx context.Context, name string, pt types.PatchType, data []byte) (*corev1.Node, error) {
	return f.cs.CoreV1().Nodes().Patch(ctx, name, pt, data, metav1.PatchOptions{}, "status")
}

func (f fakeAPI) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	return f.cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
}
