package kube

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/overlayd/overlayd/internal/errtest"
)

func TestResolveNodeName(t *testing.T) {
	pod := func(nodeName string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "overlayd-abcde", Namespace: "kube-flannel"}, Spec: corev1.PodSpec{NodeName: nodeName}}
	}
	tests := []struct {
		name    string
		env     map[string]string
		objects []*corev1.Pod
		want    string
		wantErr string
	}{
		{name: "NODE_NAME", env: map[string]string{"NODE_NAME": "worker-1", "POD_NAME": "x", "POD_NAMESPACE": "y"}, want: "worker-1"},
		{name: "from the pod", env: map[string]string{"POD_NAME": "overlayd-abcde", "POD_NAMESPACE": "kube-flannel"},
			objects: []*corev1.Pod{pod("worker-2")}, want: "worker-2"},
		{name: "nothing set", env: map[string]string{}, wantErr: "set NODE_NAME"},
		{name: "only POD_NAME", env: map[string]string{"POD_NAME": "overlayd-abcde"}, wantErr: "set NODE_NAME"},
		{name: "pod missing", env: map[string]string{"POD_NAME": "overlayd-abcde", "POD_NAMESPACE": "kube-flannel"}, wantErr: "deadline"},
		{name: "pod not scheduled", env: map[string]string{"POD_NAME": "overlayd-abcde", "POD_NAMESPACE": "kube-flannel"},
			objects: []*corev1.Pod{pod("")}, wantErr: "deadline"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			for _, p := range tc.objects {
				cs.Tracker().Add(p)
			}
			o := Options{Client: fakeAPI{cs}, RetryInterval: 10 * time.Millisecond}
			got, err := ResolveNodeName(testContext(t, 100*time.Millisecond), o, func(k string) string { return tc.env[k] })
			if !errtest.Check(t, err, tc.wantErr) {
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestExplainAPIError(t *testing.T) {
	gr := schema.GroupResource{Resource: "nodes"}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"forbidden", apierrors.NewForbidden(gr, "n", errors.New("no")), "nodes/status patch"},
		{"unauthorized", apierrors.NewUnauthorized("bad token"), "refused the credentials"},
		{"unreachable", &url.Error{Op: "Get", URL: "https://192.0.2.1:6443", Err: errors.New("connection refused")}, "is the API server reachable"},
		{"other", fmt.Errorf("odd"), "get node x: odd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := explainAPIError(tc.err, "get node x")
			if !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.err) {
				t.Errorf("got %v, want it to wrap the error and contain %q", err, tc.want)
			}
		})
	}
}

func TestNewClientNeedsAnAPIServer(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	if _, _, err := NewClient(ClientOptions{}); err == nil || !strings.Contains(err.Error(), "--kube-api-url") {
		t.Errorf("error %v, want one naming --kube-api-url", err)
	}
	cs, host, err := NewClient(ClientOptions{APIURL: "https://192.0.2.1:6443"})
	if err != nil || cs == nil || host != "https://192.0.2.1:6443" {
		t.Errorf("NewClient(--kube-api-url) = %v, %q, %v", cs, host, err)
	}
	if _, _, err := NewClient(ClientOptions{Kubeconfig: "/nonexistent/kubeconfig"}); err == nil {
		t.Error("a missing kubeconfig file was accepted")
	}
}

func TestWaitForNode(t *testing.T) {
	cs := fake.NewClientset(node("node0", "10.244.3.0/24", map[string]string{
		testAnn.PublicIPOverwrite: "203.0.113.3",
		testAnn.NodePublicIP:      "198.51.100.4",
		testAnn.BackendType:       "vxlan",
		testAnn.BackendData:       `{"VNI":1,"VtepMAC":"02:00:00:00:00:33"}`,
		testAnn.PublicIP:          "203.0.113.3",
	}))
	own, err := WaitForNode(testContext(t, 5*time.Second), testOptions(t, cs))
	if err != nil {
		t.Fatal(err)
	}
	if own.Name != "node0" || own.PodCIDR.String() != "10.244.3.0/24" || own.PublicIPOverwrite.String() != "203.0.113.3" ||
		own.NodePublicIP.String() != "198.51.100.4" {
		t.Errorf("own node %+v", own)
	}
	if string(own.Previous.BackendData) != `{"VNI":1,"VtepMAC":"02:00:00:00:00:33"}` {
		t.Errorf("previous backend data %s, want the annotation's", own.Previous.BackendData)
	}
}
