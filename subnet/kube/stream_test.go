package kube

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

// encodedNodeList is list as the API server sends it in protobuf.
func encodedNodeList(t testing.TB, list *corev1.NodeList) []byte {
	t.Helper()
	core, err := newCoreV1()
	if err != nil {
		t.Fatal(err)
	}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NodeList"))
	var buf bytes.Buffer
	if err := protobuf.NewSerializer(core.scheme, core.scheme).Encode(list, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testNodeList(n int) *corev1.NodeList {
	l := &corev1.NodeList{ListMeta: metav1.ListMeta{ResourceVersion: "4711"}}
	for i := range n {
		nd := node(fmt.Sprintf("peer-%d", i), fmt.Sprintf("10.244.%d.0/24", i),
			peerAnnotations("198.51.100.7", "02:00:00:00:00:01"))
		nd.ResourceVersion = fmt.Sprint(100 + i)
		nd.CreationTimestamp = metav1.Unix(1700000000+int64(i), 0)
		nd.Spec.PodCIDRs = []string{nd.Spec.PodCIDR, fmt.Sprintf("2001:db8:%x::/64", i)}
		nd.Labels = map[string]string{"kubernetes.io/hostname": nd.Name}
		nd.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate}}
		nd.Status.Images = []corev1.ContainerImage{{Names: []string{"registry.example/big:1"}, SizeBytes: 1 << 30}}
		nd.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		l.Items = append(l.Items, *nd)
	}
	return l
}

func TestDecodeNodeStream(t *testing.T) {
	want := testNodeList(3)
	data := encodedNodeList(t, want)
	var got []string
	meta, err := decodeNodeStream(bytes.NewReader(data), func(n *corev1.Node) error {
		got = append(got, fmt.Sprint(n.Name, " ", n.ResourceVersion, " ", n.CreationTimestamp.Unix(), " ",
			n.Spec.PodCIDRs, " ", n.Annotations[testAnn.PublicIP]))
		if n.Labels != nil || n.ManagedFields != nil || n.Status.Images != nil || n.Status.Conditions != nil {
			t.Errorf("node %s keeps fields a lease does not need: %+v", n.Name, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if meta.ResourceVersion != "4711" {
		t.Errorf("resourceVersion %q, want 4711", meta.ResourceVersion)
	}
	wantNodes := []string{
		"peer-0 100 1700000000 [10.244.0.0/24 2001:db8:0::/64] 198.51.100.7",
		"peer-1 101 1700000001 [10.244.1.0/24 2001:db8:1::/64] 198.51.100.7",
		"peer-2 102 1700000002 [10.244.2.0/24 2001:db8:2::/64] 198.51.100.7",
	}
	if fmt.Sprint(got) != fmt.Sprint(wantNodes) {
		t.Errorf("nodes %q, want %q", got, wantNodes)
	}
}

func TestDecodeNodeStreamRefuses(t *testing.T) {
	good := encodedNodeList(t, testNodeList(2))
	stop := errors.New("stop")
	tests := []struct {
		name string
		data []byte
		each error
	}{
		{"empty", nil, nil},
		{"JSON", []byte(`{"kind":"NodeList","items":[]}`), nil},
		{"magic only", good[:4], nil},
		{"truncated in an item", good[:len(good)-40], nil},
		{"truncated length", good[:7], nil},
		{"huge item length", append(append([]byte{}, good[:4]...), 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f), nil},
		{"bad wire type", append(append([]byte{}, good[:4]...), 0x0f), nil},
		{"callback error", good, stop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeNodeStream(bytes.NewReader(tt.data), func(*corev1.Node) error { return tt.each })
			if err == nil {
				t.Fatal("no error")
			}
			if tt.each != nil && !errors.Is(err, tt.each) {
				t.Errorf("error %v, want the callback's", err)
			}
		})
	}
}

// FuzzDecodeNodeStream: whatever the API server (or something in its
// place) sends, decoding ends in nodes or an error: no panic, no huge
// allocation; and where the whole-message decoders of client-go read the
// same bytes as a NodeList, the stream yields exactly its nodes.
func FuzzDecodeNodeStream(f *testing.F) {
	f.Add(encodedNodeList(f, testNodeList(2)))
	f.Add(encodedNodeList(f, testNodeList(0)))
	f.Add([]byte("k8s\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var names []string
		_, err := decodeNodeStream(bytes.NewReader(data), func(n *corev1.Node) error {
			names = append(names, n.Name)
			return nil
		})
		if err != nil {
			return
		}
		var u runtime.Unknown
		var whole corev1.NodeList
		if len(data) < 4 || u.Unmarshal(data[4:]) != nil || whole.Unmarshal(u.Raw) != nil {
			return // lenient where client-go is strict (an envelope field of another wire type)
		}
		if len(whole.Items) != len(names) {
			t.Fatalf("stream decoded %d nodes, the whole list has %d", len(names), len(whole.Items))
		}
		for i := range names {
			if names[i] != whole.Items[i].Name {
				t.Fatalf("node %d: stream %q, whole list %q", i, names[i], whole.Items[i].Name)
			}
		}
	})
}
