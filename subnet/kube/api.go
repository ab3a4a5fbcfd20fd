package kube

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// Client is the part of the Kubernetes API the subnet manager uses: our
// node and pod, the node list and watch behind the informer, and patches
// of nodes/status. NewClient implements it over a REST client that knows
// only core/v1, so the binary links no other API group.
type Client interface {
	GetNode(ctx context.Context, name string) (*corev1.Node, error)
	ListNodes(ctx context.Context, opts metav1.ListOptions) (*corev1.NodeList, error)
	WatchNodes(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	// PatchNodeStatus patches the status subresource of node name.
	PatchNodeStatus(ctx context.Context, name string, pt types.PatchType, data []byte) (*corev1.Node, error)
	GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
}

// nodeStreamer is a Client that can also read a whole Node list one Node
// at a time (restAPI: the protobuf answer decoded as it arrives). The first
// list, served whole from the API server's cache, goes through it.
type nodeStreamer interface {
	StreamNodes(ctx context.Context, opts metav1.ListOptions, each func(*corev1.Node) error) (metav1.ListMeta, error)
}

// coreV1 is the private scheme of core/v1 (with meta/v1's list, watch and
// status types) that the REST client decodes with.
type coreV1 struct {
	scheme *runtime.Scheme
	params runtime.ParameterCodec
}

func newCoreV1() (coreV1, error) {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		return coreV1{}, fmt.Errorf("core/v1 scheme: %w", err)
	}
	return coreV1{scheme: s, params: runtime.NewParameterCodec(s)}, nil
}

// configure sets what a typed core/v1 client sets on its copy of cfg.
func (c coreV1) configure(cfg *rest.Config) {
	gv := corev1.SchemeGroupVersion
	cfg.GroupVersion = &gv
	cfg.APIPath = "/api" // the legacy core group
	cfg.NegotiatedSerializer = serializer.WithoutConversionCodecFactory{CodecFactory: serializer.NewCodecFactory(c.scheme)}
	// Protobuf, as kubelet and kube-proxy use for core types: lists and
	// watches of thousands of Nodes decode with a fraction of JSON's
	// garbage. Patches keep their own JSON content types.
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
}

// restAPI is Client over a core/v1 RESTClient.
type restAPI struct {
	rc     rest.Interface
	params runtime.ParameterCodec
}

// newRESTAPI builds the client from cfg (which it does not modify).
func newRESTAPI(cfg *rest.Config) (*restAPI, error) {
	core, err := newCoreV1()
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	core.configure(cfg)
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("core/v1 REST client for %s: %w", cfg.Host, err)
	}
	return &restAPI{rc: rc, params: core.params}, nil
}

var _ nodeStreamer = (*restAPI)(nil)

func (a *restAPI) GetNode(ctx context.Context, name string) (*corev1.Node, error) {
	n := &corev1.Node{}
	err := a.rc.Get().Resource("nodes").Name(name).Do(ctx).Into(n)
	return n, err
}

func (a *restAPI) ListNodes(ctx context.Context, opts metav1.ListOptions) (*corev1.NodeList, error) {
	l := &corev1.NodeList{}
	err := a.rc.Get().Resource("nodes").VersionedParams(&opts, a.params).Timeout(timeoutOf(opts)).Do(ctx).Into(l)
	return l, err
}

// StreamNodes lists Nodes in protobuf and decodes the answer as it
// arrives (decodeNodeStream), calling each for every Node.
func (a *restAPI) StreamNodes(ctx context.Context, opts metav1.ListOptions, each func(*corev1.Node) error) (metav1.ListMeta, error) {
	body, err := a.rc.Get().Resource("nodes").VersionedParams(&opts, a.params).
		SetHeader("Accept", runtime.ContentTypeProtobuf).Timeout(timeoutOf(opts)).Stream(ctx)
	if err != nil {
		return metav1.ListMeta{}, err
	}
	defer body.Close()
	return decodeNodeStream(body, each)
}

func (a *restAPI) WatchNodes(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return a.rc.Get().Resource("nodes").VersionedParams(&opts, a.params).Timeout(timeoutOf(opts)).Watch(ctx)
}

func (a *restAPI) PatchNodeStatus(ctx context.Context, name string, pt types.PatchType, data []byte) (*corev1.Node, error) {
	n := &corev1.Node{}
	err := a.rc.Patch(pt).Resource("nodes").Name(name).SubResource("status").Body(data).Do(ctx).Into(n)
	return n, err
}

func (a *restAPI) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	p := &corev1.Pod{}
	err := a.rc.Get().Namespace(namespace).Resource("pods").Name(name).Do(ctx).Into(p)
	return p, err
}

// timeoutOf is the request timeout a list or watch asks for; 0: none.
func timeoutOf(opts metav1.ListOptions) time.Duration {
	if opts.TimeoutSeconds == nil {
		return 0
	}
	return time.Duration(*opts.TimeoutSeconds) * time.Second
}
