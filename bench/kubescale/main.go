// Command kubescale measures kube mode (--kube-subnet-mgr) at N Nodes,
// against a real kube-apiserver, side by side with the kernel's own limit
// and, when its binary is there, a real flanneld. As root, from the module
// root:
//
//	go run ./bench/kubescale -n 1000,5000,10000 -out bench/out
//
// For each N it starts a throwaway etcd, a kube-apiserver
// (scripts/kube-apiserver.sh builds it), a one-node lab (namespaces only)
// and creates N Nodes in parallel as kube-controller-manager and flanneld
// nodes would leave them: a podCIDR, flannel's annotations, and a kubelet's
// status (conditions, addresses, node info, images), then measures:
//
//   - the kernel's limit: iproute2 batches installing the same 3N entries;
//   - overlayd: started on the lab node, the time until all 3N entries are
//     in the kernel (kernel dumps), its peak RSS (VmHWM) and its RSS then;
//   - flanneld v0.28 (scripts/flanneld.sh builds it), the same way, once
//     with its default event queue and, when that does not converge, with
//     EVENT_QUEUE_DEPTH raised.
//
// The Markdown table is printed and written with the JSON to -out.
// Everything it creates is removed at the end, also on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/overlayd/overlayd/bench/internal/benchrun"
)

// config are the command-line settings.
type config struct {
	ns         []int
	out        string
	bin        string
	baseline   string
	flanneld   string
	timeout    time.Duration
	nodeStatus bool
	logs       string
	env        []string
}

func main() { benchrun.Main("kubescale", parseFlags, measure) }

// measure runs every N, prints the report and writes it to -out.
func measure(ctx context.Context, cfg config) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rep, err := run(ctx, cfg, log)
	if werr := rep.write(cfg.out); werr != nil && err == nil {
		err = werr
	}
	fmt.Print(rep.markdown())
	return err
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("kubescale", flag.ContinueOnError)
	var cfg config
	ns := fs.String("n", "1000,5000,10000", "comma-separated Node counts")
	env := fs.String("env", "", "comma-separated KEY=VALUE variables for overlayd (GOGC=..., GOMEMLIMIT=...)")
	fs.StringVar(&cfg.out, "out", "", "directory for kubescale.md and kubescale.json (none: print only)")
	fs.StringVar(&cfg.bin, "overlayd", "", "overlayd binary (default: build it)")
	fs.StringVar(&cfg.baseline, "baseline", "", "a second overlayd binary (an earlier build) run in kube mode in the same run, for a before/after comparison")
	fs.StringVar(&cfg.flanneld, "flanneld", "auto", `flanneld binary; "auto": scripts/flanneld.sh's cache if built; "": none`)
	fs.DurationVar(&cfg.timeout, "timeout", 3*time.Minute, "how long an agent may take to converge")
	fs.StringVar(&cfg.logs, "logs", "", "directory to keep each agent's log in")
	fs.BoolVar(&cfg.nodeStatus, "node-status", true, "give every Node a kubelet-like status (as real Nodes have)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	var err error
	if cfg.ns, err = benchrun.Counts("-n", *ns, 60000); err != nil {
		return cfg, err
	}
	if len(cfg.ns) == 0 {
		return cfg, errors.New("-n: no Node count given")
	}
	if *env != "" {
		cfg.env = strings.Split(*env, ",")
	}
	return cfg, nil
}
