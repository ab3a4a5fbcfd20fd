package nftrules

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Kernel is the seam between the rule logic and nftables: read one table,
// commit a batch of operations as one transaction.
type Kernel interface {
	// Table returns a table's chains, rules and sets; nil, nil when the
	// table does not exist.
	Table(fam nftables.TableFamily, name string) (*TableState, error)
	// Commit applies ops in one transaction: all of them or none.
	Commit(ops []Op) error
}

// TableState is what a table holds.
type TableState struct {
	Chains map[string]*ChainState
	Sets   map[string]*SetState
}

// ChainState is a base chain as read back.
type ChainState struct {
	Base  BaseChain
	Rules []Rule
}

// SetState is an address set as read back.
type SetState struct {
	KeyType  nftables.SetDatatype
	Elements []netip.Addr
}

// BaseChain is where a base chain hooks in.
type BaseChain struct {
	Type     nftables.ChainType
	Hook     nftables.ChainHook
	Priority nftables.ChainPriority
	Policy   nftables.ChainPolicy
}

// Rule is one rule's expressions.
type Rule []expr.Any

// Key is the rule's identity: its expressions as netlink encodes them, so a
// rule read back compares equal to the one written.
func (r Rule) Key(fam nftables.TableFamily) string {
	var b strings.Builder
	for _, e := range r {
		data, err := expr.Marshal(byte(fam), e)
		if err != nil {
			fmt.Fprintf(&b, "<%T: %v>", e, err)
			continue
		}
		b.WriteString(hex.EncodeToString(data))
		b.WriteByte('|')
	}
	return b.String()
}

// Op is one operation of a batch; the concrete types below are all.
type Op interface {
	op()
	ref() Ref // the table it is on
}

// Ref names a table.
type Ref struct {
	Family nftables.TableFamily
	Table  string
}

// ref is promoted to every operation, which all embed their table's Ref.
func (r Ref) ref() Ref { return r }

// Operations. Adding a table, chain or set that exists is not an error
// (AddChain of an existing chain updates its policy); deleting one that does
// not exist is, and fails the whole batch.
type (
	AddTable struct{ Ref }
	DelTable struct{ Ref }
	AddChain struct {
		Ref
		Name string
		Base BaseChain
	}
	FlushChain struct {
		Ref
		Name string
	}
	DelChain struct {
		Ref
		Name string
	}
	AddRule struct {
		Ref
		Chain string
		Rule  Rule
	}
	AddSet struct {
		Ref
		Name    string
		KeyType nftables.SetDatatype
	}
	DelSet struct {
		Ref
		Name string
	}
	AddElements struct {
		Ref
		Set   string
		Addrs []netip.Addr
	}
	DelElements struct {
		Ref
		Set   string
		Addrs []netip.Addr
	}
)

func (AddTable) op()    {}
func (DelTable) op()    {}
func (AddChain) op()    {}
func (FlushChain) op()  {}
func (DelChain) op()    {}
func (AddRule) op()     {}
func (AddSet) op()      {}
func (DelSet) op()      {}
func (AddElements) op() {}
func (DelElements) op() {}
