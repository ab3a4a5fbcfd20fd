package iptables

import (
	"fmt"
	"slices"
)

// syncChain makes our own chain hold exactly want, in order, creating the
// chain when it is missing. A chain already in place costs one List and no
// write. It returns the number of writes made.
func syncChain(r Runner, table, chain string, want []Rule) (int, error) {
	writes := 0
	lines, err := r.List(table, chain)
	if err != nil {
		exists, existsErr := r.ChainExists(table, chain)
		if existsErr != nil || exists {
			return 0, fmt.Errorf("list %s chain %s: %w", table, chain, err)
		}
		if err := r.NewChain(table, chain); err != nil {
			return 0, fmt.Errorf("create %s chain %s: %w", table, chain, err)
		}
		writes++
	}
	n, err := editChain(r, table, chain, chainRules(lines, chain), want)
	return writes + n, err
}

// editChain turns the rules a chain has into the rules wanted, in place and
// without ever flushing: at every step the chain starts with a correct prefix
// of want and still holds every wanted rule it held before, so traffic never
// sees a chain with a wanted rule missing that was there at the start.
func editChain(r Runner, table, chain string, have []string, want []Rule) (int, error) {
	wantLines := make([]string, len(want))
	for i, w := range want {
		wantLines[i] = w.String()
	}
	writes := 0
	for i := 0; i < len(want); {
		switch {
		case i < len(have) && have[i] == wantLines[i]:
			i++
			continue
		case i < len(have) && !slices.Contains(wantLines[i+1:], have[i]):
			// A stray or duplicate rule: deleting it removes nothing wanted.
			if err := r.DeleteById(table, chain, i+1); err != nil {
				return writes, fmt.Errorf("delete rule %d (%q) from %s chain %s: %w", i+1, have[i], table, chain, err)
			}
			have = slices.Delete(have, i, i+1)
		default:
			if err := r.Insert(table, chain, i+1, want[i].Spec...); err != nil {
				return writes, fmt.Errorf("insert %q at %d in %s chain %s: %w", wantLines[i], i+1, table, chain, err)
			}
			have = slices.Insert(have, i, wantLines[i])
			i++
		}
		writes++
	}
	for pos := len(have); pos > len(want); pos-- {
		if err := r.DeleteById(table, chain, pos); err != nil {
			return writes, fmt.Errorf("delete rule %d (%q) from %s chain %s: %w", pos, have[pos-1], table, chain, err)
		}
		writes++
	}
	return writes, nil
}

// syncParent makes a built-in chain jump to ours exactly once (appending the
// jump when missing) and removes every rule listed in unwanted. Other rules in
// the chain are not ours and are left alone. It returns the number of writes.
func syncParent(r Runner, table, parent string, jump Rule, unwanted []Rule) (int, error) {
	lines, err := r.List(table, parent)
	if err != nil {
		return 0, fmt.Errorf("list %s chain %s: %w", table, parent, err)
	}
	have := chainRules(lines, parent)
	writes := 0
	jumps := countLine(have, jump.String())
	if jumps == 0 {
		if err := r.Append(table, parent, jump.Spec...); err != nil {
			return writes, fmt.Errorf("append %q to %s chain %s: %w", jump.String(), table, parent, err)
		}
		writes++
	}
	if jumps > 1 {
		n, err := deleteCopies(r, jump, jumps-1)
		if writes += n; err != nil {
			return writes, err
		}
	}
	seen := make(map[string]bool, len(unwanted))
	for _, u := range unwanted {
		line := u.String()
		if seen[line] {
			continue
		}
		seen[line] = true
		n, err := deleteCopies(r, u, countLine(have, line))
		if writes += n; err != nil {
			return writes, err
		}
	}
	return writes, nil
}

// deleteCopies deletes n copies of a rule by its rulespec.
func deleteCopies(r Runner, rule Rule, n int) (int, error) {
	for i := 0; i < n; i++ {
		if err := r.Delete(rule.Table, rule.Chain, rule.Spec...); err != nil {
			return i, fmt.Errorf("delete %q from %s chain %s: %w", rule.String(), rule.Table, rule.Chain, err)
		}
	}
	return n, nil
}

func countLine(lines []string, line string) int {
	n := 0
	for _, l := range lines {
		if l == line {
			n++
		}
	}
	return n
}
