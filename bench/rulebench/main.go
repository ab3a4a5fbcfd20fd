// Command rulebench measures, side by side in one run, the iptables/ipset
// path (package iptables), the nftables path (package nftrules) and the
// IPv6 rules of the iptables mode (ip6tables and an inet6 set): the
// time to apply the masquerade and forward rules on a clean node, to check
// them when in place (one --iptables-resync tick), and, with a VXLAN peer
// filter of -peers peers, to install the filter and to add or remove one
// peer.
//
// As root, from the repository root:
//
//	go run ./bench/rulebench [-peers 10000] [-reps 20]
//
// It runs itself again inside a network namespace it creates (so iptables,
// ipset and netlink run there natively, as on a node) and deletes the
// namespace at the end, also on failure.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

type config struct {
	peers, reps int
	inner       bool
}

func main() {
	var c config
	fs := flag.NewFlagSet("rulebench", flag.ContinueOnError)
	fs.IntVar(&c.peers, "peers", 10000, "peers in the VXLAN peer filter")
	fs.IntVar(&c.reps, "reps", 20, "repetitions of each measured step")
	fs.BoolVar(&c.inner, "inner", false, "run the measurements here (set by the outer run inside its namespace)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if c.peers < 1 || c.reps < 1 {
		fmt.Fprintf(os.Stderr, "rulebench: -peers %d and -reps %d must be positive\n", c.peers, c.reps)
		os.Exit(2)
	}
	run := outer
	if c.inner {
		run = inner
	}
	if err := run(c, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "rulebench: %v\n", err)
		os.Exit(1)
	}
}

// outer creates the namespace, runs the measurements inside it and deletes
// it.
func outer(c config, out io.Writer) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces, iptables, nftables)")
	}
	ns := netnsutil.UniqueName("rb")
	if err := netnsutil.Create(ns); err != nil {
		return err
	}
	defer netnsutil.Delete(ns)
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, self, "-inner", fmt.Sprintf("-peers=%d", c.peers), fmt.Sprintf("-reps=%d", c.reps))
	cmd.Stdout, cmd.Stderr = out, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("measure in netns %s: %w", ns, err)
	}
	return nil
}
