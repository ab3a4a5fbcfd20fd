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
		l.Items = append(l.Items, *node(fmt.Sprintf("peer-%d", i), fmt.Sprintf("10.244.%d.0/24", i),
			peerAnnotations("198.51.100.7", "02:00:00:00:00:01")))
	}
	return l
}

func TestDecodeNodeStream(t *testing.T) {
	want := testNodeList(3)
	data := encodedNodeList(t, want)
	var got []string
	meta, err := decodeNodeStream(bytes.NewReader(data), func(n *corev1.Node) error {
		got = append(got, n.Name+" "+n.Spec.PodCIDR+" "+n.Annotations[testAnn.PublicIP])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if meta.ResourceVersion != "4711" {
		t.Errorf("resourceVersion %q, want 4711", meta.ResourceVersion)
	}
	wantNodes := []string{"peer-0 10.244.0.0/24 198.51.100.7", "peer-1 10.244.1.0/24 198.51.100.7", "peer-2 10.244.2.0/24 198.51.100.7"}
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
