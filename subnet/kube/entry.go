package kube

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/overlayd/overlayd/subnet"
)

// nodeEntry is what is kept of a Node while the reflector holds it (a
// streamed initial list keeps every Node until the list ends): its name
// and the lease read from it, or why none could be. That is a few hundred
// bytes, where a corev1.Node is kilobytes even without its status.
type nodeEntry struct {
	name, resourceVersion string
	lease                 subnet.Lease
	err                   error
}

var _ runtime.Object = (*nodeEntry)(nil)

// GetObjectKind is runtime.Object's: an entry carries no kind.
func (e *nodeEntry) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject is runtime.Object's (the lease's fields are not changed
// in place by anyone, so sharing them is safe).
func (e *nodeEntry) DeepCopyObject() runtime.Object { c := *e; return &c }

// nodeEntryList is a list of entries, as listEntries returns it to the
// reflector: its version is the list's.
type nodeEntryList struct {
	metav1.TypeMeta
	metav1.ListMeta
	Items []*nodeEntry
}

var _ metav1.ListInterface = (*nodeEntryList)(nil)

// DeepCopyObject is runtime.Object's.
func (l *nodeEntryList) DeepCopyObject() runtime.Object {
	c := &nodeEntryList{TypeMeta: l.TypeMeta, Items: make([]*nodeEntry, len(l.Items))}
	l.ListMeta.DeepCopyInto(&c.ListMeta)
	for i, e := range l.Items {
		c.Items[i] = e.DeepCopyObject().(*nodeEntry)
	}
	return c
}

// GetObjectMeta gives the reflector's store the key (the name).
func (e *nodeEntry) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Name: e.name, ResourceVersion: e.resourceVersion}
}

// entryOf reads a Node's lease into an entry (see Annotations.leaseOf).
func (a Annotations) entryOf(n *corev1.Node) *nodeEntry {
	l, err := a.leaseOf(fieldsOf(n))
	return &nodeEntry{name: n.Name, resourceVersion: n.ResourceVersion, lease: l, err: err}
}

// readNode is the lease of a Node, whole or as an entry; ok is false for
// anything else.
func (a Annotations) readNode(obj any) (name string, l subnet.Lease, err error, ok bool) {
	switch n := obj.(type) {
	case *corev1.Node:
		l, err := a.leaseOf(fieldsOf(n))
		return n.Name, l, err, true
	case *nodeEntry:
		return n.name, n.lease, n.err, true
	}
	return "", subnet.Lease{}, nil, false
}
