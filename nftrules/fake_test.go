package nftrules

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
)

// fakeKernel is a stateful Kernel: tables in memory, batches applied all or
// nothing, with the kernel's errors for deleting what does not exist.
type fakeKernel struct {
	tables  map[Ref]*TableState
	commits [][]Op
	fail    error // returned by the next failN Commits (1 when failN is 0)
	failN   int
	reject  func(Op) error // the kernel's verdict on one operation; nil: all fine
}

func newFakeKernel() *fakeKernel { return &fakeKernel{tables: map[Ref]*TableState{}} }

func (k *fakeKernel) Table(fam nftables.TableFamily, name string) (*TableState, error) {
	t := k.tables[Ref{Family: fam, Table: name}]
	if t == nil {
		return nil, nil
	}
	return cloneTable(t), nil
}

func (k *fakeKernel) Commit(ops []Op) error {
	if len(ops) == 0 {
		return nil
	}
	if err := k.fail; err != nil {
		if k.failN--; k.failN <= 0 {
			k.fail, k.failN = nil, 0
		}
		return err
	}
	next := map[Ref]*TableState{}
	for r, t := range k.tables {
		next[r] = cloneTable(t)
	}
	for _, o := range ops {
		if k.reject != nil {
			if err := k.reject(o); err != nil {
				return err
			}
		}
		if err := apply(next, o); err != nil {
			return err
		}
	}
	k.tables = next
	k.commits = append(k.commits, ops)
	return nil
}

func apply(tables map[Ref]*TableState, o Op) error {
	r := o.ref()
	if _, ok := o.(AddTable); ok {
		if tables[r] == nil {
			tables[r] = &TableState{Chains: map[string]*ChainState{}, Sets: map[string]*SetState{}}
		}
		return nil
	}
	t := tables[r]
	if t == nil {
		return fmt.Errorf("%T: table %s: no such file or directory", o, r.Table)
	}
	return applyIn(tables, t, o)
}

func applyIn(tables map[Ref]*TableState, t *TableState, o Op) error {
	switch o := o.(type) {
	case DelTable:
		delete(tables, o.Ref)
	case AddChain:
		if c := t.Chains[o.Name]; c != nil {
			if !sameHook(c.Base, o.Base) {
				return fmt.Errorf("add chain %s: hook differs: device or resource busy", o.Name)
			}
			c.Base.Policy = o.Base.Policy
			return nil
		}
		t.Chains[o.Name] = &ChainState{Base: o.Base}
	case FlushChain:
		c := t.Chains[o.Name]
		if c == nil {
			return fmt.Errorf("flush chain %s: no such file or directory", o.Name)
		}
		c.Rules = nil
	case DelChain:
		if t.Chains[o.Name] == nil {
			return fmt.Errorf("delete chain %s: no such file or directory", o.Name)
		}
		delete(t.Chains, o.Name)
	case AddRule:
		c := t.Chains[o.Chain]
		if c == nil {
			return fmt.Errorf("add rule to %s: no such file or directory", o.Chain)
		}
		c.Rules = append(c.Rules, o.Rule)
	case AddSet:
		if t.Sets[o.Name] == nil {
			t.Sets[o.Name] = &SetState{KeyType: o.KeyType}
		}
	case DelSet:
		if t.Sets[o.Name] == nil {
			return fmt.Errorf("delete set %s: no such file or directory", o.Name)
		}
		delete(t.Sets, o.Name)
	case AddElements:
		s := t.Sets[o.Set]
		if s == nil {
			return fmt.Errorf("add elements to %s: no such file or directory", o.Set)
		}
		s.Elements = sortedUnique(append(s.Elements, o.Addrs...))
	case DelElements:
		s := t.Sets[o.Set]
		if s == nil {
			return fmt.Errorf("delete elements from %s: no such file or directory", o.Set)
		}
		for _, a := range o.Addrs {
			i := slices.Index(s.Elements, a)
			if i < 0 {
				return fmt.Errorf("delete element %s: %w", a, errNoElement)
			}
			s.Elements = slices.Delete(s.Elements, i, i+1)
		}
	}
	return nil
}

var errNoElement = errors.New("no such file or directory")

func cloneTable(t *TableState) *TableState {
	c := &TableState{Chains: map[string]*ChainState{}, Sets: map[string]*SetState{}}
	for n, ch := range t.Chains {
		c.Chains[n] = &ChainState{Base: ch.Base, Rules: slices.Clone(ch.Rules)}
	}
	for n, s := range t.Sets {
		c.Sets[n] = &SetState{KeyType: s.KeyType, Elements: slices.Clone(s.Elements)}
	}
	return c
}

// lastCommit returns the last batch committed, nil when none.
func (k *fakeKernel) lastCommit() []Op {
	if len(k.commits) == 0 {
		return nil
	}
	return k.commits[len(k.commits)-1]
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}
