package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"regexp"

	"github.com/vishvananda/netlink"

	"github.com/overlayd/overlayd/dockeropts"
	"github.com/overlayd/overlayd/subnet"
)

// dockerOptsDefaults are the defaults of one way of calling docker-opts.
type dockerOptsDefaults struct {
	name, output, key string
}

var (
	// overlaydDockerOpts is `overlayd docker-opts`: the file and key the
	// field guides' units pass to mk-docker-opts.sh (-d /run/flannel/docker
	// -k DOCKER_NETWORK_OPTIONS).
	overlaydDockerOpts = dockerOptsDefaults{"overlayd docker-opts", "/run/flannel/docker", "DOCKER_NETWORK_OPTIONS"}
	// mkDockerOpts is the multi-call name mk-docker-opts.sh: the script's
	// own defaults.
	mkDockerOpts = dockerOptsDefaults{"mk-docker-opts.sh", "/run/docker_opts.env", "DOCKER_OPTS"}
)

// dockerOptsMain is `overlayd docker-opts`, or overlayd called as
// mk-docker-opts.sh.
func dockerOptsMain(args []string, defaults dockerOptsDefaults) int {
	return runDockerOpts(args, defaults, os.Getenv, routeViaGateway, os.Stderr)
}

// runDockerOpts returns the exit code: 0 on success (and for --help),
// 1 when the files cannot be read or written or the subnet is already
// routed via a gateway (as the script), 2 for bad usage.
func runDockerOpts(args []string, d dockerOptsDefaults, getenv func(string) string,
	routed func(netip.Prefix) (string, error), stderr io.Writer) int {
	var subnetFile, output string
	var o dockeropts.Options
	set := flag.NewFlagSet(d.name, flag.ContinueOnError)
	set.SetOutput(stderr)
	for _, name := range []string{"subnet-file", "f"} {
		set.StringVar(&subnetFile, name, subnet.DefaultSubnetFile, "subnet file written by overlayd or flanneld (env "+EnvName("subnet-file")+")")
	}
	for _, name := range []string{"output", "d"} {
		set.StringVar(&output, name, d.output, "Docker options file to write")
	}
	set.BoolVar(&o.Individual, "i", false, "write each option as its own variable (DOCKER_OPT_BIP=...)")
	set.BoolVar(&o.Combined, "c", false, "write the combined variable (-k); neither -i nor -c means both")
	set.BoolVar(&o.NoIPMasq, "m", false, "leave --ip-masq out (older Docker)")
	set.StringVar(&o.Key, "k", d.key, "name of the combined variable")
	set.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s [-f SUBNET-FILE] [-d DOCKER-ENV-FILE] [-i] [-c] [-m] [-k COMBINED-KEY]\n\n"+
			"Writes DOCKER_OPT_BIP, DOCKER_OPT_IPMASQ, DOCKER_OPT_MTU and the combined variable\n"+
			"from the subnet file, as flannel's mk-docker-opts.sh does (-f is also --subnet-file,\n"+
			"-d also --output).\n\n", d.name)
		set.PrintDefaults()
	}
	if err := set.Parse(splitShortFlags(args)); err != nil {
		return exitCodeFor(err)
	}
	if set.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", d.name, set.Arg(0))
		return 2
	}
	given := map[string]bool{}
	set.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if v := getenv(EnvName("subnet-file")); v != "" && !given["subnet-file"] && !given["f"] {
		subnetFile = v
	}
	o.KeyPrefix = getenv(o.Key)
	if err := writeDockerOptsFile(subnetFile, output, o, routed); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", d.name, err)
		return 1
	}
	return 0
}

// shortFlagGroup is getopts' grouped switches, e.g. -ic or -cm.
var shortFlagGroup = regexp.MustCompile(`^-[icm]{2,}$`)

// splitShortFlags turns "-ic" into "-i -c", as getopts reads it.
func splitShortFlags(args []string) []string {
	var out []string
	for _, a := range args {
		if shortFlagGroup.MatchString(a) {
			for _, c := range a[1:] {
				out = append(out, "-"+string(c))
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

// writeDockerOptsFile reads subnetFile and writes the Docker options to
// output; then, as the script, it refuses a subnet the host already routes
// via a gateway (Docker's bridge would clash with it).
func writeDockerOptsFile(subnetFile, output string, o dockeropts.Options, routed func(netip.Prefix) (string, error)) error {
	env, err := subnet.ReadSubnetFile(subnetFile)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: is overlayd (or flanneld) running and ready?", err)
	}
	if err != nil {
		return err
	}
	if !env.Subnet.IsValid() && !env.IPv6Subnet.IsValid() {
		return fmt.Errorf("subnet file %s: FLANNEL_SUBNET is missing: Docker needs an IPv4 subnet for --bip", subnetFile)
	}
	if env.MTU == 0 {
		return fmt.Errorf("subnet file %s: FLANNEL_MTU is missing: Docker needs it for --mtu", subnetFile)
	}
	if err := subnet.WriteFileAtomic(output, dockeropts.Render(env, o)); err != nil {
		return err
	}
	if !env.Subnet.IsValid() {
		// IPv6 only: as mk-docker-opts.sh, no --bip and no route check
		// (the script has no IPv6 option for Docker).
		return nil
	}
	route, err := routed(env.Subnet)
	if err != nil {
		return err
	}
	if route != "" {
		return fmt.Errorf("your routing table already contains the subnet: %s", route)
	}
	return nil
}

// routeViaGateway returns a route to exactly p through a gateway, if the
// host has one.
func routeViaGateway(p netip.Prefix) (string, error) {
	dst := &net.IPNet{IP: p.Masked().Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: dst, Table: 0}, netlink.RT_FILTER_DST)
	if err != nil {
		return "", fmt.Errorf("list routes to %s: %w", p, err)
	}
	for _, r := range routes {
		if r.Gw != nil {
			return fmt.Sprintf("%s via %s", p.Masked(), r.Gw), nil
		}
	}
	return "", nil
}
