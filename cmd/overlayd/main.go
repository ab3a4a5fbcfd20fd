// Command overlayd is a flannel-compatible VXLAN overlay agent: it leases a
// pod subnet from etcd, programs the kernel so that pods reach every other
// node's pods, and writes /run/flannel/subnet.env for the CNI plugin.
package main

import (
	"fmt"
	"os"
)

func main() {
	os.Exit(runMain(os.Args[1:]))
}

// runMain dispatches subcommands; the default is the daemon.
func runMain(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Println(versionString())
			return 0
		}
	}
	return daemonMain(args)
}
