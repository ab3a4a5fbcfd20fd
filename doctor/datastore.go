package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

const groupStore = "datastore"

// ErrStoreNotChecked, as Env.StoreErr, says the datastore is not checked
// here (the Kubernetes API with --kube-subnet-mgr): its checks are skipped.
var ErrStoreNotChecked = errors.New("datastore not checked")

// checkDatastore: etcd reachable (TLS, auth), the network config, our
// lease's expiry, the clock against etcd's, the pool's fill level.
func checkDatastore(ctx context.Context, e *Env, f *facts, r *Report) {
	res, ok := checkStoreReachable(f)
	r.add(res)
	if !ok {
		return
	}
	r.add(checkLeaseExpiry(e, f))
	r.add(checkClockSkew(ctx, e))
	r.add(checkPool(f))
}

func checkStoreReachable(f *facts) (Result, bool) {
	res := Result{Group: groupStore, Check: "reachable"}
	err := f.cfgErr
	if err == nil {
		err = f.leaseErr
	}
	switch {
	case errors.Is(err, ErrStoreNotChecked):
		res.Status, res.Detail = Skip, err.Error()
	case err == nil:
		res.Status, res.Detail = OK, fmt.Sprintf("network config read (%s, /%d subnets), %d leases", f.cfg.Network, f.cfg.SubnetLen, len(f.leases))
		return res, true
	case errors.Is(err, subnet.ErrConfigNotFound):
		res.Status, res.Detail = Fail, "reachable, but there is no network config: "+err.Error()
		res.Fix = `etcdctl put <prefix>/config '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'`
	default:
		res.Status = Fail
		kind, fix := classifyStoreErr(err)
		res.Detail = kind + ": " + err.Error()
		res.Fix = fix
	}
	return res, false
}

// classifyStoreErr names the usual causes by the error's text (the etcd
// client wraps TLS and auth errors as strings inside gRPC statuses).
func classifyStoreErr(err error) (string, string) {
	s := strings.ToLower(err.Error())
	switch {
	case strings.Contains(s, "x509") || strings.Contains(s, "certificate") || strings.Contains(s, "tls"):
		return "TLS handshake with etcd failed", "check --etcd-cafile/--etcd-certfile/--etcd-keyfile against the server's certificate"
	case strings.Contains(s, "authentication") || strings.Contains(s, "permission denied") || strings.Contains(s, "invalid auth") || strings.Contains(s, "user name"):
		return "etcd refused our credentials", "check --etcd-username/--etcd-password and the user's role on <prefix>"
	}
	return "etcd unreachable", "check --etcd-endpoints and the network path to etcd (firewall, DNS, etcd running)"
}

func checkLeaseExpiry(e *Env, f *facts) Result {
	res := Result{Group: groupStore, Check: "lease"}
	switch {
	case f.ownLease == nil && f.own.IsValid():
		res.Status, res.Detail = Fail, fmt.Sprintf("no lease for this node's subnet %s in the datastore: another node may take it", f.own)
		res.Fix = "restart overlayd: it acquires its lease again"
		return res
	case f.ownLease == nil:
		res.Status, res.Detail = Skip, "this node's subnet is unknown"
		return res
	case f.ownLease.IsReservation():
		res.Status, res.Detail = OK, fmt.Sprintf("%s is a reservation (no expiry)", f.own)
		return res
	}
	exp := f.ownLease.Expiration
	if st := e.Status; st != nil && st.Lease != nil && !st.Lease.Expiration.IsZero() {
		exp = st.Lease.Expiration // the daemon's own view: etcd v3 tells other clients no expiry
	}
	if exp.Unix() <= 0 {
		res.Status, res.Detail = OK, fmt.Sprintf("%s exists; its expiry is known only to the daemon holding it", f.own)
		return res
	}
	left := exp.Sub(e.Now())
	res.Status, res.Detail = OK, fmt.Sprintf("%s expires in %s", f.own, left.Round(time.Second))
	if e.Opts.RenewMargin > 0 && left < e.Opts.RenewMargin-time.Minute {
		res.Status = Warn
		res.Detail += fmt.Sprintf(", inside the renew margin %s: renewal is late", e.Opts.RenewMargin)
		res.Fix = "check overlayd's log for renewal errors"
	}
	return res
}

func checkClockSkew(ctx context.Context, e *Env) Result {
	res := Result{Group: groupStore, Check: "clock"}
	if e.ServerTime == nil {
		res.Status, res.Detail = Skip, "the datastore's clock cannot be read here"
		return res
	}
	t, err := e.ServerTime(ctx)
	if err != nil {
		res.Status, res.Detail = Skip, fmt.Sprintf("the datastore's clock cannot be read: %v", err)
		return res
	}
	skew := e.Now().Sub(t)
	if skew < 0 {
		skew = -skew
	}
	res.Status, res.Detail = OK, fmt.Sprintf("within %s of etcd's clock", skew.Round(time.Second)+time.Second)
	if skew > e.Opts.SkewWarn {
		res.Status = Warn
		res.Detail = fmt.Sprintf("this clock is %s off etcd's: lease expiry times shown here are off by as much", skew.Round(time.Second))
		if e.Opts.RenewMargin > 0 && skew > e.Opts.RenewMargin {
			res.Status = Fail
			res.Detail += ", more than the renew margin: leases can expire before they are renewed"
		}
		res.Fix = "run NTP (chrony, systemd-timesyncd) on every node and etcd member"
	}
	return res
}

func checkPool(f *facts) Result {
	res := Result{Group: groupStore, Check: "subnet pool"}
	total := poolSize(f.cfg)
	used := 0
	for _, l := range f.leases {
		if f.cfg.InRange(l.Subnet) {
			used++
		}
	}
	if total <= 0 {
		res.Status, res.Detail = Skip, "pool size unknown"
		return res
	}
	pct := 100 * float64(used) / float64(total)
	res.Status, res.Detail = OK, fmt.Sprintf("%d of %d subnets leased (%.0f%%)", used, total, pct)
	switch {
	case used >= total:
		res.Status, res.Detail = Fail, res.Detail+": a new node gets no subnet"
		res.Fix = "widen Network or shorten SubnetLen in the network config, or delete leases of gone nodes"
	case pct >= 90:
		res.Status, res.Detail = Warn, res.Detail+": nearly full"
		res.Fix = "widen Network or shorten SubnetLen before the pool runs out"
	}
	return res
}

// poolSize is how many /SubnetLen subnets lie in SubnetMin..SubnetMax.
func poolSize(cfg *subnet.Config) int {
	if cfg == nil || !cfg.SubnetMin.Is4() || !cfg.SubnetMax.Is4() {
		return 0
	}
	lo, hi := u32(cfg.SubnetMin), u32(cfg.SubnetMax)
	if hi < lo {
		return 0
	}
	return int((hi-lo)>>(32-cfg.SubnetLen)) + 1
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
