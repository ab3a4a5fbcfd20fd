package kube

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ClientOptions say how to reach the API server, as flanneld's flags do.
type ClientOptions struct {
	// APIURL is --kube-api-url: the API server's URL, overriding the
	// kubeconfig's server.
	APIURL string
	// Kubeconfig is --kubeconfig-file. With neither, the in-cluster
	// config of a pod (service account token, KUBERNETES_SERVICE_HOST).
	Kubeconfig string
	UserAgent  string
}

// NewClient builds a client from the options and returns it with the API
// server's URL. It does not contact the API server.
func NewClient(o ClientOptions) (Client, string, error) {
	cfg, err := restConfig(o)
	if err != nil {
		return nil, "", err
	}
	if o.UserAgent != "" {
		cfg.UserAgent = o.UserAgent
	}
	api, err := newRESTAPI(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	return api, cfg.Host, nil
}

func restConfig(o ClientOptions) (*rest.Config, error) {
	if o.APIURL == "" && o.Kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kube-api-url or --kubeconfig-file, and not in a pod: %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags(o.APIURL, o.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("--kube-api-url %q / --kubeconfig-file %q: %w", o.APIURL, o.Kubeconfig, err)
	}
	return cfg, nil
}

// Environment variables a DaemonSet pod sets through the downward API.
const (
	EnvNodeName     = "NODE_NAME"     // fieldRef spec.nodeName
	EnvPodName      = "POD_NAME"      // fieldRef metadata.name
	EnvPodNamespace = "POD_NAMESPACE" // fieldRef metadata.namespace
)

// errNoNodeName: the environment names neither the node nor the pod.
var errNoNodeName = errors.New("cannot tell which node this is: set NODE_NAME (downward API fieldRef spec.nodeName), or POD_NAME and POD_NAMESPACE (fieldRef metadata.name and metadata.namespace)")

// ResolveNodeName returns our node's name: NODE_NAME, else the
// spec.nodeName of the pod POD_NAMESPACE/POD_NAME (which needs RBAC pods
// get). API errors are retried every o.RetryInterval and logged; a missing
// environment is an error at once. o needs Client, Logger, Clock and
// RetryInterval only (zero values take the defaults).
func ResolveNodeName(ctx context.Context, o Options, getenv func(string) string) (string, error) {
	if name := getenv(EnvNodeName); name != "" {
		return name, nil
	}
	pod, ns := getenv(EnvPodName), getenv(EnvPodNamespace)
	if pod == "" || ns == "" {
		return "", errNoNodeName
	}
	o.applyDefaults()
	var name string
	err := o.retrier().do(ctx, "reading this pod's node name", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
		defer cancel()
		p, err := o.Client.GetPod(ctx, ns, pod)
		if err != nil {
			return explainAPIError(err, fmt.Sprintf("get pod %s/%s (from %s, %s)", ns, pod, EnvPodNamespace, EnvPodName))
		}
		if p.Spec.NodeName == "" {
			return fmt.Errorf("pod %s/%s is not scheduled to a node yet", ns, pod)
		}
		name = p.Spec.NodeName
		return nil
	})
	return name, err
}
