package nftrules

import (
	"errors"
	"fmt"
)

// RemoveAll deletes every table the nftables mode uses, overlayd's and
// flanneld's (flannel-ipv4, flannel-ipv6, overlayd-ipv4, overlayd-ipv6),
// whichever exist, in one transaction: the node is in iptables mode now.
// It returns the names of the tables it deleted.
func RemoveAll(k Kernel) ([]string, error) {
	refs := []Ref{ipv4.ref(FlannelTable4), ipv6.ref(FlannelTable6), ipv4.ref(OverlaydTable4), ipv6.ref(OverlaydTable6)}
	var ops []Op
	var names []string
	for _, r := range refs {
		have, err := k.Table(r.Family, r.Table)
		if err != nil {
			return nil, fmt.Errorf("remove nftables tables: read %s: %w", r.Table, err)
		}
		if have != nil {
			ops = append(ops, DelTable{r})
			names = append(names, r.Table)
		}
	}
	if err := k.Commit(ops); err != nil {
		return nil, fmt.Errorf("remove nftables tables %v: %w", names, err)
	}
	return names, nil
}

// RemovePeerFilter deletes the peer filter chains and sets of both
// families, whichever exist (--vxlan-peer-filter is off).
func RemovePeerFilter(k Kernel) error {
	return errors.Join(
		removeParts(k, ipv4.ref(OverlaydTable4), []string{PeerChain}, []string{PeerSet}),
		removeParts(k, ipv6.ref(OverlaydTable6), []string{PeerChain}, []string{PeerSet}))
}

// RemoveNoTrack deletes the notrack chains of both families, whichever
// exist (the exemption is off).
func RemoveNoTrack(k Kernel) error {
	return errors.Join(
		removeParts(k, ipv4.ref(OverlaydTable4), []string{NoTrackChain}, nil),
		removeParts(k, ipv6.ref(OverlaydTable6), []string{NoTrackChain}, nil))
}

func removeParts(k Kernel, r Ref, chains, sets []string) error {
	have, err := k.Table(r.Family, r.Table)
	if err != nil || have == nil {
		return err
	}
	var ops []Op
	for _, c := range chains {
		if have.Chains[c] != nil {
			ops = append(ops, FlushChain{r, c}, DelChain{r, c})
		}
	}
	for _, s := range sets {
		if have.Sets[s] != nil {
			ops = append(ops, DelSet{r, s})
		}
	}
	if err := k.Commit(ops); err != nil {
		return fmt.Errorf("remove %v %v from table %s: %w", chains, sets, r.Table, err)
	}
	return nil
}
