package iptables

import (
	"fmt"
	"slices"
	"strings"
)

// RemovePeerFilter removes the jumps to OVERLAYD-VXLAN, the chain and the
// peer sets, whichever are present (the --vxlan-peer-filter flag is off).
// A nil s means NewIPSetRunner().
func RemovePeerFilter(r Runner, s IPSetRunner) error {
	if s == nil {
		s = NewIPSetRunner()
	}
	lines, err := r.List(filterTable, inputChain)
	if err != nil {
		return fmt.Errorf("remove peer filter: list filter chain %s: %w", inputChain, err)
	}
	rules := chainRules(lines, inputChain)
	for i := len(rules) - 1; i >= 0; i-- {
		if strings.HasSuffix(rules[i], " -j "+PeerChain) {
			if err := r.DeleteById(filterTable, inputChain, i+1); err != nil {
				return fmt.Errorf("remove peer filter: delete %q: %w", rules[i], err)
			}
		}
	}
	if err := removeChain(r, filterTable, PeerChain); err != nil {
		return fmt.Errorf("remove peer filter: %w", err)
	}
	set, _ := peerSet(r.Proto())
	return destroySets(s, set, set+"-tmp")
}

func removeChain(r Runner, table, chain string) error {
	exists, err := r.ChainExists(table, chain)
	if err != nil || !exists {
		return err
	}
	if err := r.ClearChain(table, chain); err != nil {
		return fmt.Errorf("flush %s chain %s: %w", table, chain, err)
	}
	if err := r.DeleteChain(table, chain); err != nil {
		return fmt.Errorf("delete %s chain %s: %w", table, chain, err)
	}
	return nil
}

func destroySets(s IPSetRunner, sets ...string) error {
	names, err := s.ListNames()
	if err != nil {
		return fmt.Errorf("remove peer filter: list sets: %w", err)
	}
	var b strings.Builder
	for _, set := range sets {
		if slices.Contains(names, set) {
			fmt.Fprintf(&b, "destroy %s\n", set)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	if err := s.Restore(b.String()); err != nil {
		return fmt.Errorf("remove peer filter: destroy sets: %w", err)
	}
	return nil
}
