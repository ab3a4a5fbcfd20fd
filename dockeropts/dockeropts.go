// Package dockeropts renders the Docker daemon options file that
// flannel's mk-docker-opts.sh writes from the subnet file, byte for byte:
// DOCKER_OPT_BIP, DOCKER_OPT_IPMASQ and DOCKER_OPT_MTU as individual
// variables, and all of them in one combined variable, each part
// selectable as with the script's -i, -c, -m and -k options
// (docs/configuration.md, "overlayd docker-opts").
package dockeropts

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/overlayd/overlayd/subnet"
)

// Options are mk-docker-opts.sh's switches.
type Options struct {
	// Key names the combined variable (-k; the script's default is
	// DOCKER_OPTS, overlayd docker-opts' is DOCKER_NETWORK_OPTIONS).
	Key string
	// Individual (-i) writes DOCKER_OPT_* lines, Combined (-c) the Key
	// line; neither means both.
	Individual, Combined bool
	// NoIPMasq (-m) leaves --ip-masq out (older Docker).
	NoIPMasq bool
	// KeyPrefix is the value the Key variable already had in the
	// environment: the script starts the combined value with it.
	KeyPrefix string
}

// Render returns the file's content.
func Render(env subnet.SubnetEnv, o Options) []byte {
	indiv, combined := o.Individual, o.Combined
	if !indiv && !combined {
		indiv, combined = true, true
	}
	// In the order the script's `set | grep DOCKER_OPT_` lists them.
	type opt struct{ name, value string }
	var opts []opt
	if env.Subnet.IsValid() {
		opts = append(opts, opt{"DOCKER_OPT_BIP", "--bip=" + bip(env.Subnet).String()})
	}
	if !o.NoIPMasq {
		opts = append(opts, opt{"DOCKER_OPT_IPMASQ", "--ip-masq=" + strconv.FormatBool(!env.IPMasq)})
	}
	if env.MTU > 0 {
		opts = append(opts, opt{"DOCKER_OPT_MTU", "--mtu=" + strconv.Itoa(env.MTU)})
	}
	all := o.KeyPrefix
	if all != "" {
		all += " "
	}
	var b bytes.Buffer
	for _, x := range opts {
		if indiv {
			fmt.Fprintf(&b, "%s=\"%s\"\n", x.name, x.value)
		}
		all += " " + x.value
	}
	if combined {
		fmt.Fprintf(&b, "%s=\"%s\"\n", o.Key, all)
	}
	return b.Bytes()
}

// bip is the bridge address Docker gets: FLANNEL_SUBNET, the first host
// of the lease.
func bip(p netip.Prefix) netip.Prefix {
	if p.Addr() == p.Masked().Addr() {
		return netip.PrefixFrom(p.Addr().Next(), p.Bits())
	}
	return p
}
