package nftrules

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"github.com/google/nftables"
)

// elementsPerMessage bounds one set-element message; a batch holds as many
// messages as needed and is still one transaction.
const elementsPerMessage = 1000

// NetlinkKernel is the Kernel that talks to nf_tables over netlink. It is
// safe for concurrent use: reads and batches do not interleave.
type NetlinkKernel struct {
	mu   sync.Mutex
	conn *nftables.Conn
	opts []nftables.ConnOption
}

// NewNetlinkKernel opens a netlink connection to nf_tables in the network
// namespace netnsFd refers to (0: the caller's namespace). Close it.
func NewNetlinkKernel(netnsFd int) (*NetlinkKernel, error) {
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if netnsFd > 0 {
		opts = append(opts, nftables.WithNetNSFd(netnsFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: open netlink: %w", err)
	}
	return &NetlinkKernel{conn: c, opts: opts}, nil
}

// Close releases the connection.
func (k *NetlinkKernel) Close() error { return k.conn.CloseLasting() }

// Table implements Kernel.
func (k *NetlinkKernel) Table(fam nftables.TableFamily, name string) (*TableState, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	tables, err := k.conn.ListTablesOfFamily(fam)
	if err != nil {
		return nil, fmt.Errorf("nftables: list tables: %w", err)
	}
	var t *nftables.Table
	for _, x := range tables {
		if x.Name == name {
			t = x
		}
	}
	if t == nil {
		return nil, nil
	}
	st := &TableState{Chains: map[string]*ChainState{}, Sets: map[string]*SetState{}}
	if err := k.readChains(t, st); err != nil {
		return nil, err
	}
	if err := k.readSets(t, st); err != nil {
		return nil, err
	}
	return st, nil
}

func (k *NetlinkKernel) readChains(t *nftables.Table, st *TableState) error {
	chains, err := k.conn.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return fmt.Errorf("nftables: list chains of table %s: %w", t.Name, err)
	}
	for _, c := range chains {
		if c.Table.Name != t.Name {
			continue
		}
		cs := &ChainState{Base: BaseChain{Type: c.Type}}
		if c.Hooknum != nil {
			cs.Base.Hook = *c.Hooknum
		}
		if c.Priority != nil {
			cs.Base.Priority = *c.Priority
		}
		if c.Policy != nil {
			cs.Base.Policy = *c.Policy
		}
		rules, err := k.conn.GetRules(t, c)
		if err != nil {
			return fmt.Errorf("nftables: list rules of chain %s %s: %w", t.Name, c.Name, err)
		}
		for _, r := range rules {
			cs.Rules = append(cs.Rules, Rule(r.Exprs))
		}
		st.Chains[c.Name] = cs
	}
	return nil
}

func (k *NetlinkKernel) readSets(t *nftables.Table, st *TableState) error {
	sets, err := k.conn.GetSets(t)
	if err != nil {
		return fmt.Errorf("nftables: list sets of table %s: %w", t.Name, err)
	}
	for _, s := range sets {
		elems, err := k.conn.GetSetElements(s)
		if err != nil {
			return fmt.Errorf("nftables: list elements of set %s %s: %w", t.Name, s.Name, err)
		}
		ss := &SetState{KeyType: s.KeyType, Elements: make([]netip.Addr, 0, len(elems))}
		for _, e := range elems {
			if a, ok := netip.AddrFromSlice(e.Key); ok {
				ss.Elements = append(ss.Elements, a)
			}
		}
		st.Sets[s.Name] = ss
	}
	return nil
}

// Commit implements Kernel: the ops are queued on the connection and sent
// as one batch by Flush.
func (k *NetlinkKernel) Commit(ops []Op) error {
	if len(ops) == 0 {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, o := range ops {
		if err := k.queue(o); err != nil {
			k.discard()
			return err
		}
	}
	if err := k.conn.Flush(); err != nil {
		return fmt.Errorf("nftables: commit %d operations: %w", len(ops), err)
	}
	return nil
}

// discard drops the queued messages (the library has no call for it) by
// replacing the connection: nothing sent is better than half a change.
func (k *NetlinkKernel) discard() {
	c, err := nftables.New(k.opts...)
	if err != nil {
		return // the next Commit fails the same way, with the queued messages
	}
	k.conn.CloseLasting()
	k.conn = c
}

func (k *NetlinkKernel) queue(o Op) error {
	switch o := o.(type) {
	case AddTable:
		k.conn.AddTable(table(o.Ref))
	case DelTable:
		k.conn.DelTable(table(o.Ref))
	case AddChain:
		k.conn.AddChain(chain(o.Ref, o.Name, &o.Base))
	case FlushChain:
		k.conn.FlushChain(chain(o.Ref, o.Name, nil))
	case DelChain:
		k.conn.DelChain(chain(o.Ref, o.Name, nil))
	case AddRule:
		k.conn.AddRule(&nftables.Rule{Table: table(o.Ref), Chain: chain(o.Ref, o.Chain, nil), Exprs: o.Rule})
	case AddSet:
		if err := k.conn.AddSet(&nftables.Set{Table: table(o.Ref), Name: o.Name, KeyType: o.KeyType}, nil); err != nil {
			return fmt.Errorf("nftables: add set %s %s: %w", o.Table, o.Name, err)
		}
	case DelSet:
		k.conn.DelSet(&nftables.Set{Table: table(o.Ref), Name: o.Name})
	case AddElements:
		return k.elements(o.Ref, o.Set, o.Addrs, k.conn.SetAddElements)
	case DelElements:
		return k.elements(o.Ref, o.Set, o.Addrs, k.conn.SetDeleteElements)
	default:
		return fmt.Errorf("nftables: unknown operation %T", o)
	}
	return nil
}

func (k *NetlinkKernel) elements(r Ref, set string, addrs []netip.Addr, apply func(*nftables.Set, []nftables.SetElement) error) error {
	s := &nftables.Set{Table: table(r), Name: set, KeyType: keyType(r.Family)}
	for start := 0; start < len(addrs); start += elementsPerMessage {
		chunk := addrs[start:min(start+elementsPerMessage, len(addrs))]
		elems := make([]nftables.SetElement, len(chunk))
		for i, a := range chunk {
			elems[i] = nftables.SetElement{Key: a.AsSlice()}
		}
		if err := apply(s, elems); err != nil {
			return fmt.Errorf("nftables: elements of set %s %s: %w", r.Table, set, err)
		}
	}
	return nil
}

func table(r Ref) *nftables.Table { return &nftables.Table{Family: r.Family, Name: r.Table} }

func chain(r Ref, name string, base *BaseChain) *nftables.Chain {
	c := &nftables.Chain{Table: table(r), Name: name}
	if base != nil {
		hook, prio, policy := base.Hook, base.Priority, base.Policy
		c.Type, c.Hooknum, c.Priority, c.Policy = base.Type, &hook, &prio, &policy
	}
	return c
}

// keyType is the set key type of a family's addresses.
func keyType(fam nftables.TableFamily) nftables.SetDatatype {
	if fam == nftables.TableFamilyIPv6 {
		return nftables.TypeIP6Addr
	}
	return nftables.TypeIPAddr
}

// IsUnsupported reports whether err says the kernel has no nf_tables.
func IsUnsupported(err error) bool {
	return errors.Is(err, syscall.EPROTONOSUPPORT) || errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.EAFNOSUPPORT)
}
