package main

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

// TestEtcdV2RefusesIPv6: on the v2 store a config with EnableIPv6 is
// refused at acquire with an error naming the field and the store; no
// lease is written (the registry is never reached).
func TestEtcdV2RefusesIPv6(t *testing.T) {
	cfg, err := subnet.ParseConfig([]byte(`{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8::/48","Backend":{"Type":"vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	s := &etcdSource{etcdAPI: "v2", cfg: cfg, log: slog.New(slog.DiscardHandler)}
	attrs := subnet.LeaseAttrs{PublicIP: netip.MustParseAddr("192.0.2.1"), PublicIPv6: netip.MustParseAddr("2001:db8:ffff::1"), BackendType: "vxlan"}
	_, err = s.acquire(t.Context(), attrs, subnet.SubnetEnv{})
	for _, want := range []string{"etcd v2 store (--etcd-api)", "EnableIPv6 is true", "IPv4-only", "use etcd v3"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("acquire on v2 with EnableIPv6: %v, want an error with %q", err, want)
		}
	}
}

// TestLeaseVtepMACs: the lease source answers the VTEP MAC of each
// family from the lease's BackendData and BackendV6Data.
func TestLeaseVtepMACs(t *testing.T) {
	l := subnet.Lease{Attrs: subnet.LeaseAttrs{
		BackendType:   "vxlan",
		BackendData:   []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:00:04"}`),
		BackendV6Data: []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:06:04"}`),
	}}
	log := slog.New(slog.DiscardHandler)
	if got := leaseVtepMAC(l, false, log); len(got) != 6 || got[5] != 0x04 || got[4] != 0 {
		t.Errorf("IPv4 MAC %x", got)
	}
	if got := leaseVtepMAC(l, true, log); len(got) != 6 || got[4] != 0x06 {
		t.Errorf("IPv6 MAC %x", got)
	}
	l.Attrs.BackendV6Data = nil
	if got := leaseVtepMAC(l, true, log); got != nil {
		t.Errorf("IPv6 MAC of a lease without BackendV6Data: %x", got)
	}
}

// TestEtcdSourceDualStack: the etcd source answers both previous VTEP
// MACs from our dual-stack lease (one list for both) and acquire reuses
// that lease, IPv6Subnet included, with the new attributes.
func TestEtcdSourceDualStack(t *testing.T) {
	cfg, err := subnet.ParseConfig([]byte(`{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"2001:db8::/48","Backend":{"Type":"vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	clock := subnettest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	reg := subnettest.NewRegistry(clock)
	ours := subnet.LeaseAttrs{
		PublicIP: netip.MustParseAddr("192.0.2.10"), PublicIPv6: netip.MustParseAddr("2001:db8:ffff::10"), BackendType: "vxlan",
		BackendData:   []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:00:10"}`),
		BackendV6Data: []byte(`{"VNI":1,"VtepMAC":"02:00:00:00:06:10"}`),
	}
	old := subnet.Lease{Subnet: netip.MustParsePrefix("10.5.7.0/24"), IPv6Subnet: netip.MustParsePrefix("2001:db8:0:7::/64"),
		Attrs: ours, Expiration: clock.Now().Add(time.Hour)}
	if err := reg.PutLease(old); err != nil {
		t.Fatal(err)
	}
	src := &etcdSource{reg: closingRegistry{reg}, etcdAPI: "v3", cfg: cfg, clock: clock, log: slog.New(slog.DiscardHandler)}
	if got := macText(src.previousVtepMAC(t.Context(), ours.PublicIP)); got != "02:00:00:00:00:10" {
		t.Errorf("previous VTEP MAC %q", got)
	}
	if got := macText(src.previousV6VtepMAC(t.Context(), ours.PublicIP)); got != "02:00:00:00:06:10" {
		t.Errorf("previous IPv6 VTEP MAC %q", got)
	}
	if n := reg.Calls(subnettest.OpList); n != 1 {
		t.Errorf("%d lists for both MACs, want 1", n)
	}
	l, err := src.acquire(t.Context(), ours, subnet.SubnetEnv{})
	if err != nil {
		t.Fatal(err)
	}
	if l.ID() != old.ID() {
		t.Errorf("acquired %s, want our lease %s", l.ID(), old.ID())
	}
}
