package kube

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// apiRequest is one request the fake API server received.
type apiRequest struct {
	method, path, query, contentType, body string
}

// fakeAPIServer answers each "METHOD /path" with a canned JSON body and
// records the requests.
func fakeAPIServer(t *testing.T, replies map[string]string) (*httptest.Server, func() []apiRequest) {
	t.Helper()
	var mu sync.Mutex
	var got []apiRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, apiRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), string(body)})
		mu.Unlock()
		reply, ok := replies[r.Method+" "+r.URL.Path]
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"not here"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []apiRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]apiRequest(nil), got...)
	}
}

func TestRESTClientSpeaksCoreV1(t *testing.T) {
	const nodeJSON = `{"kind":"Node","apiVersion":"v1","metadata":{"name":"node0","annotations":{"a":"b"}},"spec":{"podCIDR":"10.244.3.0/24"}}`
	srv, requests := fakeAPIServer(t, map[string]string{
		"GET /api/v1/nodes/node0":                    nodeJSON,
		"PATCH /api/v1/nodes/node0/status":           nodeJSON,
		"GET /api/v1/namespaces/kube-flannel/pods/p": `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"kube-flannel"},"spec":{"nodeName":"node0"}}`,
		"GET /api/v1/nodes":                          `{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[` + nodeJSON + `]}`,
	})
	c, host, err := NewClient(ClientOptions{APIURL: srv.URL, UserAgent: "overlayd/test"})
	if err != nil || host != srv.URL {
		t.Fatalf("NewClient = %q, %v", host, err)
	}
	ctx := testContext(t, 5*time.Second)

	n, err := c.GetNode(ctx, "node0")
	if err != nil || n.Name != "node0" || n.Spec.PodCIDR != "10.244.3.0/24" || n.Annotations["a"] != "b" {
		t.Errorf("GetNode = %+v, %v", n, err)
	}
	if _, err := c.GetNode(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "not here") {
		t.Errorf("GetNode of a missing node: %v, want the server's Status message", err)
	}
	if _, err := c.PatchNodeStatus(ctx, "node0", types.StrategicMergePatchType, []byte(`{"metadata":{}}`)); err != nil {
		t.Errorf("PatchNodeStatus: %v", err)
	}
	if p, err := c.GetPod(ctx, "kube-flannel", "p"); err != nil || p.Spec.NodeName != "node0" {
		t.Errorf("GetPod = %+v, %v", p, err)
	}
	timeout := int64(30)
	l, err := c.ListNodes(ctx, metav1.ListOptions{ResourceVersion: "0", Limit: 500, TimeoutSeconds: &timeout})
	if err != nil || len(l.Items) != 1 || l.ResourceVersion != "7" {
		t.Errorf("ListNodes = %+v, %v", l, err)
	}

	want := []apiRequest{
		{method: "GET", path: "/api/v1/nodes/node0"},
		{method: "GET", path: "/api/v1/nodes/nope"},
		{method: "PATCH", path: "/api/v1/nodes/node0/status", contentType: string(types.StrategicMergePatchType), body: `{"metadata":{}}`},
		{method: "GET", path: "/api/v1/namespaces/kube-flannel/pods/p"},
		{method: "GET", path: "/api/v1/nodes", query: "limit=500&resourceVersion=0&timeout=30s&timeoutSeconds=30"},
	}
	got := requests()
	if len(got) != len(want) {
		t.Fatalf("requests %+v, want %+v", got, want)
	}
	for i, w := range want {
		g := got[i]
		if g.method != w.method || g.path != w.path || g.query != w.query || g.contentType != w.contentType || g.body != w.body {
			t.Errorf("request %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestRESTClientWatchesNodes(t *testing.T) {
	events := `{"type":"ADDED","object":{"kind":"Node","apiVersion":"v1","metadata":{"name":"node1","resourceVersion":"8"}}}` + "\n" +
		`{"type":"DELETED","object":{"kind":"Node","apiVersion":"v1","metadata":{"name":"node1","resourceVersion":"9"}}}` + "\n"
	srv, requests := fakeAPIServer(t, map[string]string{"GET /api/v1/nodes": events})
	c, _, err := NewClient(ClientOptions{APIURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testContext(t, 5*time.Second))
	defer cancel()
	w, err := c.WatchNodes(ctx, metav1.ListOptions{ResourceVersion: "7"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var got []string
	for e := range w.ResultChan() {
		n, ok := e.Object.(interface{ GetName() string })
		if !ok {
			t.Fatalf("event %v with a %T", e.Type, e.Object)
		}
		got = append(got, string(e.Type)+" "+n.GetName())
	}
	if want := []string{string(watch.Added) + " node1", string(watch.Deleted) + " node1"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events %q, want %q", got, want)
	}
	if q := requests()[0].query; q != "resourceVersion=7&watch=true" {
		t.Errorf("watch query %q", q)
	}
}
