package subnet_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

const (
	ourID   = "0123456789abcdef0123456789abcdef"
	otherID = "fedcba9876543210fedcba9876543210"
)

func withID(a subnet.LeaseAttrs, id string) subnet.LeaseAttrs { a.NodeID = id; return a }

// TestPickOwnLeaseIdentity: a lease is ours by PublicIP and identity; a
// lease without identity (flanneld's, older overlayd's) still matches by
// PublicIP; another identity with our PublicIP is an error naming both.
func TestPickOwnLeaseIdentity(t *testing.T) {
	cfg, err := subnet.ParseConfig([]byte(cfg16))
	if err != nil {
		t.Fatal(err)
	}
	lease := func(s, ip, id string) subnet.Lease {
		return subnet.Lease{Subnet: netip.MustParsePrefix(s), Attrs: withID(attrs(ip, ourMAC), id)}
	}
	tests := []struct {
		name    string
		leases  []subnet.Lease
		ours    string // our identity
		want    string // subnet picked, "" none
		wantErr []string
	}{
		{"ours by identity", []subnet.Lease{lease("10.5.1.0/24", ourIP, ourID)}, ourID, "10.5.1.0/24", nil},
		{"no identity: by PublicIP", []subnet.Lease{lease("10.5.1.0/24", ourIP, "")}, ourID, "10.5.1.0/24", nil},
		{"our identity unknown", []subnet.Lease{lease("10.5.1.0/24", ourIP, otherID)}, "", "10.5.1.0/24", nil},
		{"other PublicIP, our identity", []subnet.Lease{lease("10.5.1.0/24", "192.0.2.99", ourID)}, ourID, "", nil},
		{"another node's", []subnet.Lease{lease("10.5.1.0/24", ourIP, otherID)}, ourID, "",
			[]string{"10.5.1.0-24", ourIP, otherID, ourID, "two nodes share one PublicIP"}},
		{"another node's beside one without identity", []subnet.Lease{lease("10.5.1.0/24", ourIP, ""), lease("10.5.2.0/24", ourIP, otherID)}, ourID, "",
			[]string{"10.5.2.0-24", otherID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, ok, err := subnet.PickOwnLease(tt.leases, netip.MustParseAddr(ourIP), tt.ours, cfg)
			if tt.wantErr != nil {
				if !errors.Is(err, subnet.ErrPublicIPInUse) || ok {
					t.Fatalf("got %v %v, want ErrPublicIPInUse", ok, err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ""; ok {
				got = l.Subnet.String()
				if got != tt.want {
					t.Errorf("picked %s, want %s", got, tt.want)
				}
			} else if tt.want != "" {
				t.Errorf("picked nothing, want %s", tt.want)
			}
		})
	}
}

// TestAcquireRefusesAnotherNodesLease: a second node with our PublicIP
// and another identity does not take the lease (on main it did, along
// with its VTEP MAC): Acquire fails naming both, and the registry keeps
// the other node's lease unchanged with nothing new created.
func TestAcquireRefusesAnotherNodesLease(t *testing.T) {
	e := newEnv(t, cfg16)
	theirs := subnet.Lease{Subnet: netip.MustParsePrefix("10.5.1.0/24"), Attrs: withID(attrs(ourIP, "02:00:00:00:00:0a"), otherID), Expiration: t0.Add(time.Hour)}
	if err := e.reg.PutLease(theirs); err != nil {
		t.Fatal(err)
	}
	m := e.manager(t, func(o *subnet.ManagerOptions) { o.Attrs = withID(attrs(ourIP, ourMAC), ourID) })
	_, err := m.Acquire(context.Background())
	if !errors.Is(err, subnet.ErrPublicIPInUse) || !strings.Contains(err.Error(), otherID) || !strings.Contains(err.Error(), ourID) {
		t.Fatalf("Acquire: %v, want ErrPublicIPInUse naming %s and %s", err, otherID, ourID)
	}
	if _, _, err := m.FindOwnLease(context.Background()); !errors.Is(err, subnet.ErrPublicIPInUse) {
		t.Errorf("FindOwnLease: %v, want ErrPublicIPInUse", err)
	}
	all := e.reg.Leases()
	if len(all) != 1 || !subnet.AttrsEqual(all[0].Attrs, theirs.Attrs) {
		t.Errorf("registry after the refusal: %+v, want only the other node's lease unchanged", all)
	}
}

// TestAcquireAdoptsLeaseWithoutIdentity: a lease with our PublicIP and no
// identity (flanneld's, or written by an older overlayd) is reused and
// gains our identity.
func TestAcquireAdoptsLeaseWithoutIdentity(t *testing.T) {
	e := newEnv(t, cfg16)
	e.put(t, "10.5.1.0/24", ourIP, ourMAC, t0.Add(time.Hour))
	m := e.manager(t, func(o *subnet.ManagerOptions) { o.Attrs = withID(attrs(ourIP, ourMAC), ourID) })
	l, err := m.Acquire(context.Background())
	if err != nil || l.Subnet != netip.MustParsePrefix("10.5.1.0/24") {
		t.Fatalf("Acquire = %v, %v; want the lease without identity reused", l.Subnet, err)
	}
	stored, _ := e.reg.Lease(l.Subnet)
	if stored.Attrs.NodeID != ourID {
		t.Errorf("stored identity %q, want ours", stored.Attrs.NodeID)
	}
}
