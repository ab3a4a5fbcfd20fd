package iptables

import (
	"fmt"

	goipt "github.com/coreos/go-iptables/iptables"
)

// Runner is the subset of *goipt.IPTables this package uses. Rules are given
// as argument lists (rulespecs); List returns iptables -S lines.
type Runner interface {
	Proto() goipt.Protocol
	HasRandomFully() bool
	ChainExists(table, chain string) (bool, error)
	NewChain(table, chain string) error
	ClearChain(table, chain string) error
	DeleteChain(table, chain string) error
	List(table, chain string) ([]string, error)
	Exists(table, chain string, rulespec ...string) (bool, error)
	Append(table, chain string, rulespec ...string) error
	Insert(table, chain string, pos int, rulespec ...string) error
	Delete(table, chain string, rulespec ...string) error
	DeleteById(table, chain string, id int) error
}

// go-iptables satisfies Runner with no wrapper.
var _ Runner = (*goipt.IPTables)(nil)

// lockWaitSeconds bounds the wait for the xtables lock, so a stuck lock holder
// costs one failed resync (retried on the next tick) rather than a goroutine
// blocked forever.
const lockWaitSeconds = 60

// NewRunner returns go-iptables for iptables (or ip6tables when ipv6 is set),
// waiting for the xtables lock (-w) like every other well-behaved writer.
func NewRunner(ipv6 bool) (Runner, error) {
	proto := goipt.ProtocolIPv4
	if ipv6 {
		proto = goipt.ProtocolIPv6
	}
	ipt, err := goipt.New(goipt.IPFamily(proto), goipt.Timeout(lockWaitSeconds))
	if err != nil {
		return nil, fmt.Errorf("iptables runner (ipv6=%t): %w", ipv6, err)
	}
	return ipt, nil
}
