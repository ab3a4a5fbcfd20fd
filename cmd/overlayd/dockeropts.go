package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/overlayd/overlayd/subnet"
)

// defaultDockerOptsFile is where `overlayd docker-opts` writes by default,
// the file flannel's mk-docker-opts.sh writes and Docker units source.
const defaultDockerOptsFile = "/run/flannel/docker"

// dockerOptsMain is `overlayd docker-opts`: flannel's mk-docker-opts.sh.
// It turns the subnet file into DOCKER_OPT_BIP, DOCKER_OPT_IPMASQ,
// DOCKER_OPT_MTU and DOCKER_NETWORK_OPTIONS for dockerd.
func dockerOptsMain(args []string) int {
	return runDockerOpts(args, os.Getenv, os.Stderr)
}

// runDockerOpts returns the exit code: 0 on success (and for --help),
// 1 when the files cannot be read or written, 2 for bad usage.
func runDockerOpts(args []string, getenv func(string) string, stderr io.Writer) int {
	var subnetFile, output string
	set := flag.NewFlagSet("overlayd docker-opts", flag.ContinueOnError)
	set.SetOutput(stderr)
	set.StringVar(&subnetFile, "subnet-file", subnet.DefaultSubnetFile, "subnet file written by overlayd or flanneld (env "+EnvName("subnet-file")+")")
	set.StringVar(&output, "output", defaultDockerOptsFile, "Docker options file to write")
	set.Usage = func() {
		fmt.Fprintf(stderr, "usage: overlayd docker-opts [--subnet-file=PATH] [--output=PATH]\n\n"+
			"Writes DOCKER_OPT_BIP, DOCKER_OPT_IPMASQ, DOCKER_OPT_MTU and DOCKER_NETWORK_OPTIONS\n"+
			"from the subnet file, as flannel's mk-docker-opts.sh does.\n\n")
		set.PrintDefaults()
	}
	if err := set.Parse(args); err != nil {
		return exitCodeFor(err)
	}
	if set.NArg() > 0 {
		fmt.Fprintf(stderr, "overlayd docker-opts: unexpected argument %q (flags start with --)\n", set.Arg(0))
		return 2
	}
	subnetFileGiven := false
	set.Visit(func(f *flag.Flag) { subnetFileGiven = subnetFileGiven || f.Name == "subnet-file" })
	if v := getenv(EnvName("subnet-file")); v != "" && !subnetFileGiven {
		subnetFile = v
	}
	if err := writeDockerOptsFile(subnetFile, output); err != nil {
		fmt.Fprintf(stderr, "overlayd docker-opts: %v\n", err)
		return 1
	}
	return 0
}

// writeDockerOptsFile reads subnetFile and writes the Docker options to output.
func writeDockerOptsFile(subnetFile, output string) error {
	env, err := subnet.ReadSubnetFile(subnetFile)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: is overlayd (or flanneld) running and ready?", err)
	}
	if err != nil {
		return err
	}
	if !env.Subnet.IsValid() {
		return fmt.Errorf("subnet file %s: FLANNEL_SUBNET is missing: Docker needs an IPv4 subnet for --bip", subnetFile)
	}
	if env.MTU == 0 {
		return fmt.Errorf("subnet file %s: FLANNEL_MTU is missing: Docker needs it for --mtu", subnetFile)
	}
	return subnet.WriteDockerOpts(output, env)
}
