package iptables

import (
	"errors"
	"fmt"
	"os/exec"
)

// RemoveAll removes everything the iptables mode installs, overlayd's and
// flanneld's: the jumps to FLANNEL-POSTRTG, FLANNEL-FWD, OVERLAYD-VXLAN and
// OVERLAYD-NOTRACK and the chains, then the peer sets, whichever are
// present. The node is in nftables mode now (docs/nftables.md). A nil s
// means NewIPSetRunner(); with no ipset binary in PATH no set is looked for.
func RemoveAll(r Runner, s IPSetRunner) error {
	var errs []error
	for _, c := range []struct{ table, parent, chain string }{
		{natTable, postroutingChain, MasqChain},
		{filterTable, forwardChain, ForwardChain},
		{filterTable, inputChain, PeerChain},
		{rawTable, outputChain, NoTrackChain},
	} {
		if err := removeChainAndJumps(r, c.table, c.parent, c.chain); err != nil {
			errs = append(errs, fmt.Errorf("remove %s chain %s: %w", c.table, c.chain, err))
		}
	}
	if s == nil {
		if _, err := exec.LookPath("ipset"); err != nil {
			return errors.Join(errs...)
		}
		s = NewIPSetRunner()
	}
	set, _ := peerSet(r.Proto())
	if err := destroySets(s, set, set+"-tmp"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
