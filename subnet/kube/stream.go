package kube

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A Node list in Kubernetes' protobuf encoding is the 4 bytes "k8s\x00"
// followed by a runtime.Unknown message whose field 2 (raw) is the
// NodeList message: field 1 its ListMeta, field 2 each Node, repeated.
// decodeNodeStream reads that one Node at a time, so that a list of
// 10,000 Nodes served whole (resourceVersion "0", from the API server's
// cache, without paging) never sits in memory whole.
//
// The reader is the API server's answer: lengths are checked against what
// is left of the enclosing message and against maxNodeBytes, so a broken
// or hostile stream ends in an error, never in a huge allocation.

// protobufMagic starts every protobuf-encoded Kubernetes object.
var protobufMagic = [4]byte{'k', '8', 's', 0}

// maxNodeBytes bounds one encoded Node (real ones are a few kilobytes,
// with images in their status tens of kilobytes).
const maxNodeBytes = 4 << 20

// Field numbers of runtime.Unknown and metav1/corev1 lists.
const (
	unknownRawField   = 2
	listMetaField     = 1
	listItemsField    = 2
	protoWireVarint   = 0
	protoWireFixed64  = 1
	protoWireBytes    = 2
	protoWireFixed32  = 5
	maxProtoFieldSkip = 1 << 30
)

// errNotProtobuf: the answer is not in Kubernetes' protobuf encoding.
var errNotProtobuf = errors.New("not a Kubernetes protobuf object (no k8s\\x00 prefix)")

// decodeNodeStream calls each for every Node of the list r holds, in
// order, and returns the list's metadata. An error from each ends it. The
// Nodes hold only what a lease is read from (leanDecoder): name,
// resourceVersion, creationTimestamp, annotations, podCIDR(s).
func decodeNodeStream(r io.Reader, each func(*corev1.Node) error) (metav1.ListMeta, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var magic [4]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil {
		return metav1.ListMeta{}, fmt.Errorf("node list: %w", errNotProtobuf)
	}
	if magic != protobufMagic {
		return metav1.ListMeta{}, fmt.Errorf("node list: %w", errNotProtobuf)
	}
	d := &protoStream{r: br}
	var meta metav1.ListMeta
	sawList := false
	for {
		field, wire, err := d.tag()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return meta, fmt.Errorf("node list envelope: %w", err)
		}
		if field != unknownRawField || wire != protoWireBytes {
			if err := d.skip(wire, -1); err != nil {
				return meta, fmt.Errorf("node list envelope field %d: %w", field, err)
			}
			continue
		}
		n, err := d.length(-1)
		if err != nil {
			return meta, fmt.Errorf("node list envelope: %w", err)
		}
		if meta, err = d.nodeList(n, each); err != nil {
			return meta, err
		}
		sawList = true
	}
	if !sawList {
		return meta, errors.New("node list: the envelope holds no list")
	}
	return meta, nil
}

// protoStream reads protobuf wire format from a buffered reader.
type protoStream struct {
	r    *bufio.Reader
	buf  []byte // reused for each Node
	lean leanDecoder
}

// nodeList reads a NodeList message of n bytes.
func (d *protoStream) nodeList(n int64, each func(*corev1.Node) error) (metav1.ListMeta, error) {
	var meta metav1.ListMeta
	left := n
	for left > 0 {
		field, wire, used, err := d.tagCounted()
		if err != nil {
			return meta, fmt.Errorf("node list: %w", err)
		}
		left -= used
		if wire != protoWireBytes || (field != listMetaField && field != listItemsField) {
			used, err := d.skipCounted(wire, left)
			if err != nil {
				return meta, fmt.Errorf("node list field %d: %w", field, err)
			}
			left -= used
			continue
		}
		size, used, err := d.lengthCounted(left)
		if err != nil {
			return meta, fmt.Errorf("node list: %w", err)
		}
		left -= used + size
		if left < 0 {
			return meta, errors.New("node list: an item runs past the end of the list")
		}
		if err := d.message(field, size, &meta, each); err != nil {
			return meta, err
		}
	}
	return meta, nil
}

// message reads one ListMeta or Node of size bytes.
func (d *protoStream) message(field int, size int64, meta *metav1.ListMeta, each func(*corev1.Node) error) error {
	if size > maxNodeBytes {
		return fmt.Errorf("node list: an item of %d bytes (at most %d)", size, maxNodeBytes)
	}
	if int64(cap(d.buf)) < size {
		d.buf = make([]byte, size)
	}
	b := d.buf[:size]
	if _, err := io.ReadFull(d.r, b); err != nil {
		return fmt.Errorf("node list: %w", unexpectedEOF(err))
	}
	if field == listMetaField {
		if err := meta.Unmarshal(b); err != nil {
			return fmt.Errorf("node list metadata: %w", err)
		}
		return nil
	}
	n, err := d.lean.decode(b)
	if err != nil {
		return fmt.Errorf("node list item: %w", err)
	}
	return each(n)
}

func (d *protoStream) tag() (field int, wire int, err error) {
	field, wire, _, err = d.tagCounted()
	return field, wire, err
}

// tagCounted reads a field tag and says how many bytes it took.
func (d *protoStream) tagCounted() (field int, wire int, used int64, err error) {
	v, used, err := d.varint()
	if err != nil {
		return 0, 0, used, err
	}
	field, wire = int(v>>3), int(v&7)
	if field <= 0 || v>>3 > 1<<29 {
		return 0, 0, used, fmt.Errorf("bad field number %d", v>>3)
	}
	return field, wire, used, nil
}

func (d *protoStream) length(limit int64) (int64, error) {
	n, _, err := d.lengthCounted(limit)
	return n, err
}

// lengthCounted reads a length prefix that must fit in limit (-1: any up
// to maxProtoFieldSkip).
func (d *protoStream) lengthCounted(limit int64) (n int64, used int64, err error) {
	v, used, err := d.varint()
	if err != nil {
		return 0, used, unexpectedEOF(err)
	}
	if v > maxProtoFieldSkip || (limit >= 0 && int64(v) > limit-used) {
		return 0, used, fmt.Errorf("length %d runs past its message", v)
	}
	return int64(v), used, nil
}

// varint reads one base-128 varint and says how many bytes it took.
func (d *protoStream) varint() (uint64, int64, error) {
	var used int64
	cr := byteCounter{r: d.r, n: &used}
	v, err := binary.ReadUvarint(cr)
	return v, used, err
}

func (d *protoStream) skip(wire int, limit int64) error {
	_, err := d.skipCounted(wire, limit)
	return err
}

// skipCounted skips a field's value of the given wire type.
func (d *protoStream) skipCounted(wire int, limit int64) (int64, error) {
	var n, used int64
	switch wire {
	case protoWireVarint:
		_, u, err := d.varint()
		return u, unexpectedEOF(err)
	case protoWireFixed64:
		n = 8
	case protoWireFixed32:
		n = 4
	case protoWireBytes:
		size, u, err := d.lengthCounted(limit)
		if err != nil {
			return u, err
		}
		n, used = size, u
	default:
		return 0, fmt.Errorf("unsupported wire type %d", wire)
	}
	if limit >= 0 && used+n > limit {
		return used, errors.New("a field runs past its message")
	}
	if _, err := d.r.Discard(int(n)); err != nil {
		return used, unexpectedEOF(err)
	}
	return used + n, nil
}

// byteCounter counts the bytes ReadUvarint takes.
type byteCounter struct {
	r *bufio.Reader
	n *int64
}

func (c byteCounter) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		*c.n++
	}
	return b, err
}

// unexpectedEOF turns io.EOF inside a message into io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
