package kube

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	corev1 "k8s.io/api/core/v1"
)

// What a lease needs of a Node, by protobuf field number: of the Node its
// metadata (1) and spec (2), not its status (3, most of its size: images,
// conditions); of the metadata its name (1), resourceVersion (6),
// creationTimestamp (8) and annotations (12), not its managedFields (17)
// and the rest; of the spec podCIDR (1) and podCIDRs (7).
var (
	leanNodeFields = map[protowire.Number]bool{1: true, 2: true}
	leanMetaFields = map[protowire.Number]bool{1: true, 6: true, 8: true, 12: true}
	leanSpecFields = map[protowire.Number]bool{1: true, 7: true}
)

// leanDecoder decodes encoded Nodes into the fields a lease is read from
// (see fieldsOf), skipping the rest without allocating it. Its scratch
// buffers are reused from one Node to the next.
type leanDecoder struct {
	meta, spec []byte
}

// decode reads one encoded Node.
func (d *leanDecoder) decode(b []byte) (*corev1.Node, error) {
	n := &corev1.Node{}
	for len(b) > 0 {
		num, typ, tagLen := protowire.ConsumeTag(b)
		if tagLen < 0 {
			return nil, fmt.Errorf("node: %w", protowire.ParseError(tagLen))
		}
		valLen := protowire.ConsumeFieldValue(num, typ, b[tagLen:])
		if valLen < 0 {
			return nil, fmt.Errorf("node field %d: %w", num, protowire.ParseError(valLen))
		}
		value := b[tagLen : tagLen+valLen]
		b = b[tagLen+valLen:]
		if !leanNodeFields[num] {
			continue
		}
		if typ != protowire.BytesType {
			return nil, fmt.Errorf("node field %d: wire type %d, want bytes", num, typ)
		}
		msg, _ := protowire.ConsumeBytes(value)
		var err error
		if num == 1 {
			if d.meta, err = keepFields(d.meta[:0], msg, leanMetaFields); err == nil {
				err = n.ObjectMeta.Unmarshal(d.meta)
			}
		} else {
			if d.spec, err = keepFields(d.spec[:0], msg, leanSpecFields); err == nil {
				err = n.Spec.Unmarshal(d.spec)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("node field %d: %w", num, err)
		}
	}
	if n.Name == "" {
		return nil, errors.New("node without a name")
	}
	return n, nil
}

// keepFields appends to dst the fields of the message msg whose numbers
// are in keep, as they are encoded.
func keepFields(dst, msg []byte, keep map[protowire.Number]bool) ([]byte, error) {
	for len(msg) > 0 {
		num, typ, tagLen := protowire.ConsumeTag(msg)
		if tagLen < 0 {
			return dst, protowire.ParseError(tagLen)
		}
		valLen := protowire.ConsumeFieldValue(num, typ, msg[tagLen:])
		if valLen < 0 {
			return dst, protowire.ParseError(valLen)
		}
		if keep[num] {
			dst = append(dst, msg[:tagLen+valLen]...)
		}
		msg = msg[tagLen+valLen:]
	}
	return dst, nil
}
