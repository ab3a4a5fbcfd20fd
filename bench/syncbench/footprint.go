package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"time"

	"github.com/vishvananda/netns"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/bench/internal/benchns"
	"github.com/overlayd/overlayd/bench/internal/fakepeers"
	"github.com/overlayd/overlayd/peerset"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/vxlandata"
)

// footprintTimeout bounds the in-process sync.
const footprintTimeout = 2 * time.Minute

// reconcilerFootprint is the live heap of a backend.Reconciler holding N
// peers in sync (its desired, believed and status state) and of the
// peerset.Set in front of it (the decoded peers), measured in this process
// against a scratch namespace: one part of overlayd's RSS.
type reconcilerFootprint struct {
	HeapMiB      float64 `json:"heap_mib"`
	BytesPerPeer float64 `json:"bytes_per_peer"`
}

// measureFootprint syncs the peers in-process; in nexthop route mode
// through a backend.NetlinkKernel, which writes nexthop objects (the
// library alone cannot).
func measureFootprint(ctx context.Context, peers []fakepeers.Peer, routeMode string) (reconcilerFootprint, error) {
	leases, err := leasesOf(peers)
	if err != nil {
		return reconcilerFootprint{}, err
	}
	ns, err := benchns.New("footprint")
	if err != nil {
		return reconcilerFootprint{}, err
	}
	defer ns.Close()
	var kernel backend.Kernel = ns.Handle
	mode := backend.RouteModeOnlink
	if routeMode == string(backend.RouteModeNexthop) {
		h, err := netns.GetFromName(ns.Name)
		if err != nil {
			return reconcilerFootprint{}, fmt.Errorf("reconciler footprint: %w", err)
		}
		nk, err := backend.NewNetlinkKernel(ns.Handle, h)
		h.Close()
		if err != nil {
			return reconcilerFootprint{}, err
		}
		defer nk.Close()
		kernel, mode = nk, backend.RouteModeNexthop
	}
	before := liveHeap()
	r, err := backend.NewReconciler(backend.ReconcilerOptions{
		Kernel: kernel, LinkName: ns.Device.Name, LinkIndex: ns.Device.Index,
		Network: network, OwnSubnet: netip.MustParsePrefix("10.255.255.0/24"),
		ResyncInterval: time.Hour, Logger: slog.New(slog.DiscardHandler), RouteMode: mode,
	})
	if err != nil {
		return reconcilerFootprint{}, err
	}
	set, err := peerset.New(peerset.Options{Network: network, OwnSubnet: netip.MustParsePrefix("10.255.255.0/24"), Peers: r})
	if err != nil {
		return reconcilerFootprint{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, footprintTimeout)
	defer cancel()
	go r.Run(rctx)
	go set.Run(rctx)
	set.ReplacePeers(leases)
	select {
	case <-r.Synced():
	case <-rctx.Done():
		return reconcilerFootprint{}, fmt.Errorf("reconciler footprint: not in sync: %w", rctx.Err())
	}
	heap := float64(liveHeap()) - float64(before)
	runtime.KeepAlive(r)
	runtime.KeepAlive(set)
	runtime.KeepAlive(leases)
	return reconcilerFootprint{HeapMiB: heap / (1 << 20), BytesPerPeer: heap / float64(len(peers))}, nil
}

// leasesOf turns the fake peers into the leases the reconciler takes.
func leasesOf(peers []fakepeers.Peer) ([]subnet.Lease, error) {
	out := make([]subnet.Lease, len(peers))
	for i, p := range peers {
		data, err := vxlandata.Marshal(vxlandata.Data{VNI: 1, VtepMAC: p.HardwareAddr()}, true)
		if err != nil {
			return nil, err
		}
		out[i] = subnet.Lease{Subnet: p.Subnet, Expiration: time.Now().Add(leaseTTL * time.Second),
			Attrs: subnet.LeaseAttrs{PublicIP: p.PublicIP, BackendType: subnet.BackendVXLAN, BackendData: data}}
	}
	return out, nil
}

// liveHeap is the heap in use after two full collections.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
