package nftrules

import (
	"net/netip"
	"slices"
)

// plan returns the operations that turn have (nil: no table) into want,
// and the names of the chains and sets they repair; none when all is in
// place.
func plan(want TableSpec, have *TableState) (ops []Op, repaired []string) {
	if have == nil {
		have = &TableState{}
		ops = append(ops, AddTable{want.Ref})
	}
	for _, s := range want.Sets {
		o := planSet(want.Ref, s, have.Sets[s.Name])
		if len(o) > 0 {
			repaired = append(repaired, s.Name)
		}
		ops = append(ops, o...)
	}
	for _, c := range want.Chains {
		o := planChain(want.Ref, c, have.Chains[c.Name])
		if len(o) > 0 {
			repaired = append(repaired, c.Name)
		}
		ops = append(ops, o...)
	}
	if want.Exclusive {
		for _, name := range sortedKeys(have.Chains) {
			if !slices.ContainsFunc(want.Chains, func(c ChainSpec) bool { return c.Name == name }) {
				ops = append(ops, FlushChain{want.Ref, name}, DelChain{want.Ref, name})
				repaired = append(repaired, name)
			}
		}
	}
	return ops, repaired
}

// planChain rebuilds a chain whose hook, rules or policy differ: flushed and
// refilled in the same batch, so the change is atomic. A chain hooked in the
// wrong place is deleted and created again (the kernel cannot move it).
func planChain(r Ref, want ChainSpec, have *ChainState) []Op {
	if have != nil && have.Base == want.Base && sameRules(r, want.Rules, have.Rules) {
		return nil
	}
	var ops []Op
	if have != nil {
		ops = append(ops, FlushChain{r, want.Name})
		if !sameHook(have.Base, want.Base) {
			ops = append(ops, DelChain{r, want.Name})
		}
	}
	ops = append(ops, AddChain{Ref: r, Name: want.Name, Base: want.Base})
	for _, rule := range want.Rules {
		ops = append(ops, AddRule{Ref: r, Chain: want.Name, Rule: rule})
	}
	return ops
}

func sameHook(a, b BaseChain) bool {
	return a.Type == b.Type && a.Hook == b.Hook && a.Priority == b.Priority
}

func sameRules(r Ref, want, have []Rule) bool {
	return slices.EqualFunc(want, have, func(a, b Rule) bool { return a.Key(r.Family) == b.Key(r.Family) })
}

// planSet creates a missing set with its elements, or adds and deletes the
// elements that differ.
func planSet(r Ref, want SetSpec, have *SetState) []Op {
	if have == nil {
		ops := []Op{AddSet{Ref: r, Name: want.Name, KeyType: keyType(r.Family)}}
		if len(want.Elements) > 0 {
			ops = append(ops, AddElements{Ref: r, Set: want.Name, Addrs: want.Elements})
		}
		return ops
	}
	add, del := diffAddrs(want.Elements, have.Elements)
	return elementOps(r, want.Name, add, del)
}

func elementOps(r Ref, set string, add, del []netip.Addr) []Op {
	var ops []Op
	if len(del) > 0 {
		ops = append(ops, DelElements{Ref: r, Set: set, Addrs: del})
	}
	if len(add) > 0 {
		ops = append(ops, AddElements{Ref: r, Set: set, Addrs: add})
	}
	return ops
}

// diffAddrs returns what is in want and not in have, and the reverse.
func diffAddrs(want, have []netip.Addr) (add, del []netip.Addr) {
	in := make(map[netip.Addr]bool, len(have))
	for _, a := range have {
		in[a] = true
	}
	for _, a := range want {
		if !in[a] {
			add = append(add, a)
		}
		delete(in, a)
	}
	for a := range in {
		del = append(del, a)
	}
	slices.SortFunc(del, func(a, b netip.Addr) int { return a.Compare(b) })
	return add, del
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortedUnique(addrs []netip.Addr) []netip.Addr {
	out := slices.Clone(addrs)
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}
