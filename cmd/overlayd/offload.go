package main

import (
	"log/slog"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/offload"
	"github.com/overlayd/overlayd/statusdoc"
)

// txOffload is the tx checksum offload decision for the VXLAN device,
// made once at start, applied whenever the device is (re)created, and
// shown in the log, /status and overlayd_vxlan_tx_checksum_offload.
type txOffload struct {
	decision offload.Decision
	release  string // uname -r, for /status

	mu       sync.Mutex
	applyErr error // the last apply's error; nil when the device follows
}

// newTxOffload decides from mode and the running kernel, and registers the
// metric on reg.
func newTxOffload(mode offload.Mode, reg prometheus.Registerer) *txOffload {
	release := kernelRelease()
	sig, _ := os.ReadFile("/proc/version_signature") // Ubuntu only; absent elsewhere
	t := &txOffload{decision: offload.Decide(mode, offload.UpstreamRelease(release, sig)), release: release}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "overlayd_vxlan_tx_checksum_offload",
		Help: "1 when tx checksum offload (and so TSO) is kept on the VXLAN device, 0 when it is turned off; labels: the --tx-checksum-offload mode and why.",
	}, []string{"mode", "why"})
	v := 0.0
	if t.decision.On {
		v = 1
	}
	g.WithLabelValues(string(t.decision.Mode), string(t.decision.Why)).Set(v)
	reg.MustRegister(g)
	return t
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// apply sets the device's feature as decided. A failure is logged and kept
// for /status; the daemon carries on, since the data path still works.
func (t *txOffload) apply(dev string, log *slog.Logger) {
	err := backend.SetTxChecksumOffload(dev, t.decision.On)
	t.mu.Lock()
	t.applyErr = err
	t.mu.Unlock()
	if err != nil {
		log.Warn("could not set tx checksum offload on the VXLAN device", "dev", dev, "want", onOff(t.decision.On),
			"mode", t.decision.Mode, "why", t.decision.Why, "err", err)
		return
	}
	log.Info("tx checksum offload", "dev", dev, "on", t.decision.On, "mode", t.decision.Mode,
		"why", t.decision.Why, "kernel", t.release, "detail", t.decision.Detail)
}

// status is the /status view.
func (t *txOffload) status() *statusdoc.Offload {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	info := &statusdoc.Offload{On: t.decision.On, Mode: string(t.decision.Mode), Why: string(t.decision.Why),
		Detail: t.decision.Detail, Kernel: t.release}
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
