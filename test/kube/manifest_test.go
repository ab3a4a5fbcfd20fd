package kube

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// TestManifestsServerSideDryRun applies every object of both DaemonSet
// manifests to a real kube-apiserver with server-side apply and
// dryRun=All: the API server's own validation and defaulting (schema,
// immutable and required fields, RBAC objects), not only YAML parsing.
// Namespaces are created for real first, as namespaced objects need them.
func TestManifestsServerSideDryRun(t *testing.T) {
	netnsutil.RequireRoot(t)
	apiServerBinary(t)
	etcd := etcdtest.StartT(t, etcdtest.Options{})
	api := startAPIServer(t, etcd.Endpoint())
	cfg := api.Config(api.AdminToken)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	for _, path := range []string{manifestPath, "../../deploy/kubernetes/overlayd.yaml"} {
		t.Run(path[len("../../deploy/kubernetes/"):], func(t *testing.T) {
			objs := decodeManifest(t, path)
			kinds := map[string]int{}
			for _, dryRun := range []bool{false, true} {
				for _, obj := range objs {
					if (obj.GetKind() == "Namespace") == dryRun {
						continue // namespaces for real first, then the rest as a dry run
					}
					applyObject(t, dyn, mapper, obj, dryRun)
					kinds[obj.GetKind()]++
				}
			}
			if kinds["DaemonSet"] != 1 || kinds["Namespace"] != 1 {
				t.Errorf("applied %v, want one Namespace and one DaemonSet among them", kinds)
			}
		})
	}
}

func decodeManifest(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		err := dec.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}

func applyObject(t *testing.T, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, obj *unstructured.Unstructured, dryRun bool) {
	t.Helper()
	gvk := obj.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("%s %s: %v", gvk, obj.GetName(), err)
	}
	opts := metav1.ApplyOptions{FieldManager: "overlayd-manifest-test", Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	ctx := labtest.Context(t, 30*time.Second)
	var res dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if ns := obj.GetNamespace(); ns != "" {
		res = dyn.Resource(m.Resource).Namespace(ns)
	}
	if _, err := res.Apply(ctx, obj.GetName(), obj, opts); err != nil {
		t.Errorf("server-side apply (dryRun=%t) of %s %s/%s: %v", dryRun, gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
}
