package main

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/iptables"
	"github.com/overlayd/overlayd/offload"
	"github.com/overlayd/overlayd/statusdoc"
)

// txOffload owns the tx checksum offload of the VXLAN device and, in auto
// mode, the exemption of outer VXLAN packets from NAT that makes offload
// safe (package offload says why). It decides once, when the bind address
// is known, applies the decision whenever the device is (re)created, keeps
// the exemption in place, and shows all of it in the log, /status and
// overlayd_vxlan_tx_checksum_offload.
type txOffload struct {
	mode   offload.Mode
	resync time.Duration
	gauge  *prometheus.GaugeVec

	mu       sync.Mutex
	decision offload.Decision
	exempt   exemptionKeeper // auto mode, once installed
	applyErr error           // the last apply's error; nil when the device follows
}

func newTxOffload(mode offload.Mode, resync time.Duration, reg prometheus.Registerer) *txOffload {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "overlayd_vxlan_tx_checksum_offload",
		Help: "1 when tx checksum offload (and so TSO) is kept on the VXLAN device, 0 when it is turned off; labels: the --tx-checksum-offload mode and why.",
	}, []string{"mode", "why"})
	reg.MustRegister(g)
	return &txOffload{mode: mode, resync: resync, gauge: g}
}

// decide installs the exemption for VXLAN sent from bind (auto mode), or
// removes one an earlier run left (on, off), and makes the decision.
func (t *txOffload) decide(bind netip.AddrPort, nft bool, log *slog.Logger) offload.Decision {
	var (
		exempt exemptionKeeper
		err    error
	)
	if nft {
		exempt, err = nftExemption(bind, t.mode.WantsExemption(), t.resync, log) // rules.go
	} else {
		exempt, err = t.exemption(bind, log)
	}
	d := offload.Decide(t.mode, err)
	t.mu.Lock()
	t.decision, t.exempt = d, exempt
	t.mu.Unlock()
	v := 0.0
	if d.On {
		v = 1
	}
	t.gauge.WithLabelValues(string(d.Mode), string(d.Why)).Set(v)
	return d
}

func (t *txOffload) exemption(bind netip.AddrPort, log *slog.Logger) (exemptionKeeper, error) {
	runner, err := iptables.NewRunner(bind.Addr().Is6())
	if err != nil {
		return nil, err
	}
	if !t.mode.WantsExemption() {
		if err := iptables.RemoveVXLANNoTrack(runner); err != nil {
			log.Warn("could not remove the VXLAN NAT exemption left by an earlier run", "err", err)
		}
		return nil, nil
	}
	m, err := iptables.NewManager(iptables.Options{Runner: runner, VXLANNoTrack: bind, Resync: t.resync, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := m.Ensure(); err != nil {
		return nil, err
	}
	return m, nil
}

// run keeps the exemption in place (auto mode) until ctx ends.
func (t *txOffload) run(ctx context.Context) error {
	t.mu.Lock()
	m := t.exempt
	t.mu.Unlock()
	if m == nil {
		<-ctx.Done()
		return nil
	}
	return m.Run(ctx)
}

// apply sets the device's feature as decided. A failure is logged and kept
// for /status; the daemon carries on, since the data path still works.
func (t *txOffload) apply(dev string, log *slog.Logger) {
	t.mu.Lock()
	d := t.decision
	t.mu.Unlock()
	err := backend.SetTxChecksumOffload(dev, d.On)
	t.mu.Lock()
	t.applyErr = err
	t.mu.Unlock()
	if err != nil {
		log.Warn("could not set tx checksum offload on the VXLAN device", "dev", dev, "want", onOff(d.On),
			"mode", d.Mode, "why", d.Why, "err", err)
		return
	}
	log.Info("tx checksum offload", "dev", dev, "on", d.On, "mode", d.Mode, "why", d.Why, "detail", d.Detail)
}

// status is the /status view.
func (t *txOffload) status() *statusdoc.Offload {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.decision.Mode == "" {
		return nil // not decided yet
	}
	info := &statusdoc.Offload{On: t.decision.On, Mode: string(t.decision.Mode), Why: string(t.decision.Why), Detail: t.decision.Detail}
	if t.applyErr != nil {
		info.Error = t.applyErr.Error()
	}
	return info
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
