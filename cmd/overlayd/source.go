package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/etcdv2"
	"github.com/overlayd/overlayd/vxlandata"
)

// leaseSource is where our lease and the peers' leases come from: etcd
// (etcdSource) or the Kubernetes API (kubeSource, kube.go). It is opened
// before the VXLAN device, because the device keeps the VTEP MAC of the
// lease the source will reuse.
type leaseSource interface {
	// api names the store for /status: "v3", "v2", or "" in kube mode.
	api() string
	// previousVtepMAC is the VTEP MAC of our lease as it stands, the one
	// acquire will reuse; nil when there is none or it has no usable MAC.
	previousVtepMAC(ctx context.Context, public netip.Addr) []byte
	// previousV6VtepMAC is the same for the IPv6 device (flannel-v6.<VNI>):
	// the VtepMAC of our lease's BackendV6Data (the backend-v6-data
	// annotation in kube mode); nil when there is none.
	previousV6VtepMAC(ctx context.Context, public netip.Addr) []byte
	// backendData encodes our BackendData in the form the store's readers
	// expect (etcd v2: flannel v0.11's, without the VNI).
	backendData(d vxlandata.Data) ([]byte, error)
	// acquire publishes attrs (PublicIPv6 and BackendV6Data included) as
	// our lease and returns it with its IPv6Subnet when IPv6 is on; prev
	// is the previous subnet file, whose subnets are reused when free (etcd
	// only: the node's podCIDRs rule in kube).
	acquire(ctx context.Context, attrs subnet.LeaseAttrs, prev subnet.SubnetEnv) (subnet.Lease, error)
	leaseManager
	Close() error
}

// leaseManager is what the daemon uses of *subnet.Manager and
// *kube.Manager once the lease is acquired.
type leaseManager interface {
	Lease() subnet.Lease
	RunRenewal(ctx context.Context) error
	RunWatch(ctx context.Context, sink subnet.PeerSink) error
}

var (
	_ leaseSource = (*etcdSource)(nil)
	_ leaseSource = (*kubeSource)(nil)
)

// acquired holds the manager acquire made. Lease may be called from any
// goroutine (/status) and is zero before acquire; the Run methods are
// called after acquire only.
type acquired struct {
	mu  sync.Mutex
	mgr leaseManager
}

func (a *acquired) set(m leaseManager) {
	a.mu.Lock()
	a.mgr = m
	a.mu.Unlock()
}

func (a *acquired) get() leaseManager {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mgr
}

func (a *acquired) Lease() subnet.Lease {
	if m := a.get(); m != nil {
		return m.Lease()
	}
	return subnet.Lease{}
}

func (a *acquired) RunRenewal(ctx context.Context) error { return a.get().RunRenewal(ctx) }

func (a *acquired) RunWatch(ctx context.Context, sink subnet.PeerSink) error {
	return a.get().RunWatch(ctx, sink)
}

// etcdSource is the lease source of etcd v3 or v2: a subnet.Manager over
// the registry, made by acquire.
type etcdSource struct {
	acquired
	reg         registry
	etcdAPI     string // "v2" or "v3"
	cfg         *subnet.Config
	clock       subnet.Clock
	log         *slog.Logger
	registerer  prometheus.Registerer
	renewMargin time.Duration
	fence       *subnet.Manager // set by acquire
	// nodeID is our identity in the lease (nodeid.go): a lease with our
	// PublicIP and another identity is not ours to take.
	nodeID string
	ttl    time.Duration // 0: subnet.DefaultLeaseTTL
	// onLeaseExpired is told when our lease expires on the local clock
	// without a renewal, and when it is valid again (fencing).
	onLeaseExpired func(expired bool)
	// startList is the lease list previousVtepMAC read, handed to the
	// Manager so that the start lists the leases once (nil after that).
	startList *subnet.LeaseList
}

func (s *etcdSource) api() string { return s.etcdAPI }

// RunRenewal renews our lease and, beside it, fences it: a renewal stuck
// on an unreachable etcd must not keep the expiry from being noticed.
func (s *etcdSource) RunRenewal(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fenced := make(chan struct{})
	go func() {
		defer close(fenced)
		s.fence.RunFence(ctx)
	}()
	err := s.acquired.RunRenewal(ctx)
	cancel()
	<-fenced
	return err
}
func (s *etcdSource) Close() error { return s.reg.Close() }

func (s *etcdSource) backendData(d vxlandata.Data) ([]byte, error) {
	return vxlandata.Marshal(d, s.etcdAPI != "v2")
}

// previousVtepMAC reads the MAC of the lease subnet.PickOwnLease chooses,
// the one the Manager's Acquire reuses.
func (s *etcdSource) previousVtepMAC(ctx context.Context, public netip.Addr) []byte {
	return s.previousMAC(ctx, public, false)
}

// previousV6VtepMAC reads the MAC of that lease's BackendV6Data.
func (s *etcdSource) previousV6VtepMAC(ctx context.Context, public netip.Addr) []byte {
	return s.previousMAC(ctx, public, true)
}

// previousMAC finds our lease in the start list (listed once, kept for
// the Manager) and decodes the MAC of one family's backend data.
func (s *etcdSource) previousMAC(ctx context.Context, public netip.Addr, v6 bool) []byte {
	if s.startList == nil {
		list, err := s.reg.ListLeases(ctx)
		if err != nil {
			s.log.Warn("could not list leases to reuse the VTEP MAC", "err", err)
			return nil
		}
		s.startList = &list
	}
	l, ok, err := subnet.PickOwnLease(s.startList.Leases, public, s.nodeID, s.cfg)
	if err != nil {
		s.log.Warn("not reusing a VTEP MAC", "err", err) // acquire refuses to start
		return nil
	}
	if !ok || l.Attrs.BackendType != subnet.BackendVXLAN {
		return nil
	}
	return leaseVtepMAC(l, v6, s.log)
}

// leaseVtepMAC decodes the VtepMAC of a lease's BackendData (v6 false) or
// BackendV6Data (v6 true); nil, logged, when absent or unusable.
func leaseVtepMAC(l subnet.Lease, v6 bool, log *slog.Logger) []byte {
	raw, field := l.Attrs.BackendData, "BackendData"
	if v6 {
		raw, field = l.Attrs.BackendV6Data, "BackendV6Data"
	}
	if len(raw) == 0 {
		return nil
	}
	data, err := vxlandata.Unmarshal(raw)
	if err != nil {
		log.Warn("our previous lease has no usable VTEP MAC; the device gets a new one",
			"lease", l.ID().KeyName(), "field", field, "err", err)
		return nil
	}
	return data.VtepMAC
}

func (s *etcdSource) acquire(ctx context.Context, attrs subnet.LeaseAttrs, prev subnet.SubnetEnv) (subnet.Lease, error) {
	if s.etcdAPI == "v2" {
		if err := etcdv2.CheckConfig(s.cfg); err != nil {
			return subnet.Lease{}, fmt.Errorf("etcd v2 store (--etcd-api): %w", err)
		}
	}
	attrs.NodeID = s.nodeID
	// A short TTL needs failed renewals retried within it.
	retry := subnet.DefaultRenewRetry
	if s.ttl > 0 {
		retry = min(retry, max(s.ttl/10, time.Second))
	}
	mgr, err := subnet.NewManager(subnet.ManagerOptions{
		Registry: s.reg, Config: s.cfg, Attrs: attrs, PreviousSubnet: prev.Subnet, PreviousIPv6Subnet: prev.IPv6Subnet,
		RenewMargin: s.renewMargin, TTL: s.ttl, RenewRetry: retry, OnLeaseExpired: s.onLeaseExpired, Logger: s.log, Clock: s.clock,
		Rand: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), Registerer: s.registerer,
		StartList: s.startList,
	})
	// The Manager holds the list until its watch takes it; kept here too,
	// every lease in it stayed on the heap for the daemon's lifetime.
	s.startList = nil
	if err != nil {
		return subnet.Lease{}, err
	}
	s.set(mgr)
	s.fence = mgr
	lease, err := mgr.Acquire(ctx)
	if err != nil {
		return subnet.Lease{}, fmt.Errorf("acquire a subnet lease: %w", err)
	}
	return lease, nil
}
