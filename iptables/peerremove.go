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
	if err := removeChainAndJumps(r, filterTable, inputChain, PeerChain); err != nil {
		return fmt.Errorf("remove peer filter: %w", err)
	}
	set, _ := peerSet(r.Proto())
	return destroySets(s, set, set+"-tmp")
}

// removeChainAndJumps deletes every rule of parent that jumps to chain,
// then the chain, whichever are present.
func removeChainAndJumps(r Runner, table, parent, chain string) error {
	lines, err := r.List(table, parent)
	if err != nil {
		return fmt.Errorf("list %s chain %s: %w", table, parent, err)
	}
	rules := chainRules(lines, parent)
	for i := len(rules) - 1; i >= 0; i-- {
		if strings.HasSuffix(rules[i], " -j "+chain) {
			if err := r.DeleteById(table, parent, i+1); err != nil {
				return fmt.Errorf("delete %q: %w", rules[i], err)
			}
		}
	}
	return removeChain(r, table, chain)
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
