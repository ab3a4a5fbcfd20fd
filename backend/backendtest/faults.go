package backendtest

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// Op names one kind of FakeKernel call, for fault injection and counters.
type Op string

// Operations of the fake. The six write operations are the ones the
// reconciler's writes_total metric counts.
const (
	OpNeighSet     Op = "neighbour-add"
	OpNeighDel     Op = "neighbour-del"
	OpFDBSet       Op = "fdb-add"
	OpFDBDel       Op = "fdb-del"
	OpRouteReplace Op = "route-add"
	OpRouteDel     Op = "route-del"
	OpNeighList    Op = "neighbour-dump"
	OpFDBList      Op = "fdb-dump"
	OpRouteList    Op = "route-dump"
	OpRouteGet     Op = "route-get"
	OpLinkGet      Op = "link-get"
)

// WriteOps returns the operations that change kernel state.
func WriteOps() []Op {
	return []Op{OpNeighSet, OpNeighDel, OpFDBSet, OpFDBDel, OpRouteReplace, OpRouteDel}
}

type fault struct {
	op        Op
	key       string
	remaining int
	err       error
}

// Fail makes the next n calls of op whose key matches fail with err
// (n < 0: every call). key "" matches any key; otherwise it is the
// neighbour IP ("10.244.1.0"), the FDB MAC ("56:b3:03:00:ef:bd"), the
// route destination ("10.244.1.0/24"), the RouteGet address or the link
// name. Faults are checked in the order they were added.
func (k *FakeKernel) Fail(op Op, key string, n int, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.faults = append(k.faults, fault{op: op, key: key, remaining: n, err: err})
}

// InterruptNextDump makes the next dump of op (OpNeighList, OpFDBList,
// OpRouteList) return netlink.ErrDumpInterrupted.
func (k *FakeKernel) InterruptNextDump(op Op) {
	k.Fail(op, "", 1, netlink.ErrDumpInterrupted)
}

// ClearFaults removes every injected fault.
func (k *FakeKernel) ClearFaults() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.faults = nil
}

// faulty reports whether any fault is injected, so that callers build
// key strings only when they are needed. Callers hold k.mu.
func (k *FakeKernel) faulty() bool { return len(k.faults) > 0 }

// fault is check keyed by key's text, which is only formatted when a
// fault is set. Callers hold k.mu.
func (k *FakeKernel) fault(op Op, key fmt.Stringer) error {
	if !k.faulty() {
		return nil
	}
	return k.check(op, key.String())
}

// check returns the error of the first live fault matching op and key.
// Callers hold k.mu.
func (k *FakeKernel) check(op Op, key string) error {
	for i := range k.faults {
		f := &k.faults[i]
		if f.op != op || f.remaining == 0 || (f.key != "" && f.key != key) {
			continue
		}
		if f.remaining > 0 {
			f.remaining--
		}
		return f.err
	}
	return nil
}

// Count returns how many times op was called (failed calls included)
// since New or the last ResetCounts.
func (k *FakeKernel) Count(op Op) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.counts[op]
}

// Writes returns the number of write calls (all six write operations).
func (k *FakeKernel) Writes() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, op := range WriteOps() {
		n += k.counts[op]
	}
	return n
}

// ResetCounts sets every counter to zero.
func (k *FakeKernel) ResetCounts() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.counts)
}
