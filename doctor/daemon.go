package doctor

import (
	"context"
	"fmt"
)

const groupDaemon = "daemon"

// checkDaemon: is overlayd running, ready, in sync, its rules in place.
func checkDaemon(_ context.Context, e *Env, _ *facts, r *Report) {
	s := e.Status
	if s == nil {
		r.add(Result{Group: groupDaemon, Check: "running", Status: Warn,
			Detail: fmt.Sprintf("no /status from overlayd (%v): one-shot checks only", e.StatusErr),
			Fix:    "start overlayd, or pass its --metrics-addr to doctor"})
		return
	}
	if !s.Ready {
		r.add(Result{Group: groupDaemon, Check: "running", Status: Fail,
			Detail: "overlayd runs but is not ready: the subnet file is not written yet",
			Fix:    "read overlayd's log: it says what it waits for (etcd, the network config, a lease)"})
	} else {
		r.add(Result{Group: groupDaemon, Check: "running", Status: OK, Detail: "overlayd runs and is ready"})
	}
	if sy := s.Sync; sy != nil {
		res := Result{Group: groupDaemon, Check: "kernel sync", Status: OK,
			Detail: fmt.Sprintf("in sync, %d/%d peers programmed", sy.Counts.PeersProgrammed, sy.Counts.Peers)}
		if !sy.InSync {
			res.Status, res.Detail = Fail, "reconciler out of sync: "+sy.LastError
			res.Fix = "read overlayd's log for the failing netlink write"
		}
		r.add(res)
	}
	if ipt := s.IPTables; ipt != nil {
		res := Result{Group: groupDaemon, Check: "iptables rules", Status: OK, Detail: "FLANNEL-POSTRTG/FLANNEL-FWD in place"}
		if !ipt.InPlace {
			res.Status, res.Detail = Fail, "overlayd's rules are not in place: "+ipt.LastError
			res.Fix = "check that iptables works here (xtables lock, backend) and read overlayd's log"
		}
		r.add(res)
	}
}

// checkOffload shows the tx checksum offload decision and why.
func checkOffload(_ context.Context, e *Env, f *facts, r *Report) {
	res := Result{Group: "offload", Check: "tx checksum"}
	switch {
	case e.Status == nil || e.Status.Device == nil || e.Status.Device.TxChecksumOffload == nil:
		res.Status, res.Detail = Skip, "known only to the running daemon (/status)"
	default:
		o := e.Status.Device.TxChecksumOffload
		state := "off"
		if o.On {
			state = "on"
		}
		res.Status = OK
		res.Detail = fmt.Sprintf("%s on %s (--tx-checksum-offload=%s: %s)", state, f.deviceName(), o.Mode, o.Why)
		if o.Error != "" {
			res.Status, res.Detail = Warn, res.Detail+"; applying it failed: "+o.Error
			res.Fix = "ethtool -K " + f.deviceName() + " tx-checksum-ip-generic " + state + " (see docs/public-cloud.md)"
		}
	}
	r.add(res)
}
