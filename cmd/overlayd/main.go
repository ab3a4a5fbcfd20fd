// Command overlayd is a flannel-compatible VXLAN overlay agent: it leases a
// pod subnet from etcd, programs the kernel so that pods reach every other
// node's pods, and writes /run/flannel/subnet.env for the CNI plugin.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/overlayd/overlayd/cni"
)

// cniPluginName is the name under which the binary acts as the CNI plugin
// (a copy or symlink installed as /opt/cni/bin/flannel).
const cniPluginName = "flannel"

func main() {
	switch filepath.Base(os.Args[0]) {
	case cniPluginName:
		os.Exit(cni.Main())
	case mkDockerOpts.name: // a link named mk-docker-opts.sh: the script's defaults
		os.Exit(dockerOptsMain(os.Args[1:], mkDockerOpts))
	}
	os.Exit(runMain(os.Args[1:]))
}

// runMain dispatches subcommands; the default is the daemon.
func runMain(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Println(versionString())
			return 0
		case "migrate-etcd":
			return migrateMain(args[1:])
		case "status":
			return statusMain(args[1:], os.Stdout, os.Stderr, time.Now)
		case "docker-opts":
			return dockerOptsMain(args[1:], overlaydDockerOpts)
		case "cni":
			return cni.Main()
		case "doctor":
			return doctorMain(args[1:], os.Stdout, os.Stderr)
		case "bench":
			return benchMain(args[1:], os.Stdout, os.Stderr)
		}
	}
	return daemonMain(args)
}
