package iptables

import (
	"fmt"
	"net/netip"

	goipt "github.com/coreos/go-iptables/iptables"
	"github.com/overlayd/overlayd/internal/resync"
)

// normalize validates o, masks its prefixes and fills in defaults.
func (o *Options) normalize() error {
	if o.Runner == nil {
		return fmt.Errorf("iptables manager: Options.Runner is nil")
	}
	fam := o.Runner.Proto()
	var err error
	if o.Masquerade || o.ForwardRules {
		if o.Network, err = checkPrefix("Network", o.Network, fam, true); err != nil {
			return err
		}
	}
	if o.Masquerade {
		if o.PodSubnet, err = checkPrefix("PodSubnet", o.PodSubnet, fam, true); err != nil {
			return err
		}
		if !inside(o.PodSubnet, o.Network) {
			return fmt.Errorf("iptables manager: Options.PodSubnet %s is not inside Options.Network %s", o.PodSubnet, o.Network)
		}
	}
	if o.VXLANNoTrack.IsValid() && protoOfAddr(o.VXLANNoTrack.Addr()) != fam {
		return fmt.Errorf("iptables manager: Options.VXLANNoTrack %s is not of the runner's family %s", o.VXLANNoTrack, familyName(fam))
	}
	if o.PrevNetwork, err = checkPrefix("PrevNetwork", o.PrevNetwork, fam, false); err != nil {
		return err
	}
	if o.PrevSubnet, err = checkPrefix("PrevSubnet", o.PrevSubnet, fam, false); err != nil {
		return err
	}
	if o.Resync, err = resync.Interval("iptables manager: Options.Resync", o.Resync, DefaultResync); err != nil {
		return err
	}
	o.Logger, o.Clock = resync.Defaults(o.Logger, o.Clock)
	return nil
}

// checkPrefix returns p masked after checking that it is set (when required)
// and of the runner's family. An unset optional prefix is returned as is.
func checkPrefix(field string, p netip.Prefix, fam goipt.Protocol, required bool) (netip.Prefix, error) {
	if !p.IsValid() {
		if required {
			return p, fmt.Errorf("iptables manager: Options.%s is not set", field)
		}
		return p, nil
	}
	if got := protoOfAddr(p.Addr()); got != fam {
		return p, fmt.Errorf("iptables manager: Options.%s %s is %s, the runner is %s", field, p, familyName(got), familyName(fam))
	}
	return p.Masked(), nil
}

func inside(inner, outer netip.Prefix) bool {
	return inner.Bits() >= outer.Bits() && outer.Contains(inner.Addr())
}

// ruleSets lists the chains o asks for, with the flannel v0.11 rules that
// must not stay next to them. flannel v0.11 wrote no IPv6 rules: an
// ip6tables manager looks for none (an identical ip6tables rule is the
// administrator's). Rules a previous network or subnet left in our own
// chains go in either family, as every check makes a chain hold exactly
// the wanted rules.
func (o *Options) ruleSets() []ruleSet {
	var sets []ruleSet
	withLegacy := o.Runner.Proto() == goipt.ProtocolIPv4
	networks := []netip.Prefix{o.Network}
	if o.PrevNetwork.IsValid() && o.PrevNetwork != o.Network {
		networks = append(networks, o.PrevNetwork)
	}
	if o.Masquerade {
		randomFully := o.Runner.HasRandomFully() && !o.RandomFullyDisabled
		var legacy []Rule
		if withLegacy {
			legacy = legacyMasqRules(o.Network, o.PodSubnet)
			if o.PrevNetwork.IsValid() && o.PrevSubnet.IsValid() {
				legacy = append(legacy, legacyMasqRules(o.PrevNetwork, o.PrevSubnet)...)
			}
		}
		sets = append(sets, ruleSet{
			table: natTable, parent: postroutingChain, chain: MasqChain,
			jump: masqJump(), rules: MasqRules(o.Network, o.PodSubnet, randomFully), legacy: legacy,
		})
	}
	if o.VXLANNoTrack.IsValid() {
		sets = append(sets, noTrackSet(o.VXLANNoTrack))
	}
	if o.ForwardRules {
		var legacy []Rule
		for _, n := range networks {
			legacy = append(legacy, legacyForwardRules(n)...)
		}
		if !withLegacy {
			legacy = nil
		}
		sets = append(sets, ruleSet{
			table: filterTable, parent: forwardChain, chain: ForwardChain,
			jump: forwardJump(), rules: ForwardRules(o.Network), legacy: legacy,
		})
	}
	return sets
}
