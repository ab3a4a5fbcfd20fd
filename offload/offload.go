// Package offload decides whether the VXLAN device keeps the kernel's
// transmit checksum offload (tx-checksum-ip-generic), from the operator's
// mode and the running kernel.
//
// Why it matters (docs/public-cloud.md, "Checksum offload"): with offload on
// the kernel does the inner TCP checksum late and keeps TCP segmentation
// offload, which is what makes one pod-to-pod stream several times faster.
// With it off, every inner segment is checksummed and segmented in software
// before encapsulation. flanneld leaves it on.
//
// The one known way for offload to corrupt traffic is a kernel bug in NAT:
// an encapsulated packet whose outer UDP checksum is 0 (VXLAN over IPv4
// sends no outer checksum) but whose skb still carries a partial inner
// checksum had its zero outer checksum "updated" by the NAT code when the
// outer packet was masqueraded a second time (kube-proxy before Kubernetes
// 1.19 left its masquerade mark on the packet, and the mark survives
// encapsulation). The receiver then drops the outer packet as corrupt and
// TCP stalls until retransmissions get through (the 63-second delays).
// Linux 5.7 fixed it in netfilter ("never update the UDP checksum when it's
// 0"), and the fix went to the 5.6.13, 5.4.41, 4.19.123 and 4.14.181 stable
// kernels. Auto mode therefore keeps offload on, as flanneld does, except on
// kernels older than those (or whose version cannot be read), where it turns
// it off.
package offload

import (
	"fmt"
	"strconv"
	"strings"
)

// Mode is the operator's choice: --tx-checksum-offload.
type Mode string

// The modes.
const (
	Auto Mode = "auto" // on, unless the kernel is known to have the NAT checksum bug
	On   Mode = "on"   // keep the kernel's offload (flanneld's data path)
	Off  Mode = "off"  // checksum in software before encapsulation
)

// ParseMode reads a --tx-checksum-offload value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case Auto, On, Off:
		return m, nil
	}
	return "", fmt.Errorf("%q is not one of auto, on, off", s)
}

// Why says, in one short word, why the decision is what it is; it is the
// label of the metric.
type Why string

// The reasons.
const (
	WhyFlag           Why = "flag"            // the operator chose on or off
	WhyKernelFixed    Why = "kernel-fixed"    // auto: the kernel has the NAT fix
	WhyKernelAffected Why = "kernel-affected" // auto: the kernel predates the NAT fix
	WhyKernelUnknown  Why = "kernel-unknown"  // auto: the kernel version could not be read
)

// Decision is whether offload stays on, and why.
type Decision struct {
	Mode   Mode
	On     bool
	Why    Why
	Detail string // a sentence for the log and /status
}

// Decide applies mode to the kernel release (uname -r).
func Decide(mode Mode, kernelRelease string) Decision {
	switch mode {
	case On:
		return Decision{Mode: mode, On: true, Why: WhyFlag, Detail: "--tx-checksum-offload=on: the kernel's offload is kept"}
	case Off:
		return Decision{Mode: mode, On: false, Why: WhyFlag, Detail: "--tx-checksum-offload=off: checksums are computed in software before encapsulation"}
	}
	v, err := ParseKernelRelease(kernelRelease)
	if err != nil {
		return Decision{Mode: Auto, On: false, Why: WhyKernelUnknown,
			Detail: fmt.Sprintf("kernel release %q cannot be read (%v): offload off to be safe", kernelRelease, err)}
	}
	if fixed, first := v.hasNATChecksumFix(); !fixed {
		return Decision{Mode: Auto, On: false, Why: WhyKernelAffected,
			Detail: fmt.Sprintf("kernel %s predates the NAT zero-checksum fix (%s): offload off", v, first)}
	}
	return Decision{Mode: Auto, On: true, Why: WhyKernelFixed,
		Detail: fmt.Sprintf("kernel %s has the NAT zero-checksum fix: offload kept on, as flanneld does", v)}
}

// KernelVersion is the numeric head of a kernel release string.
type KernelVersion struct{ Major, Minor, Patch int }

func (v KernelVersion) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// ParseKernelRelease reads "6.1.0-18-amd64", "5.4.41", "3.10.0-1160.el7.x86_64", "6.8".
func ParseKernelRelease(release string) (KernelVersion, error) {
	head := release
	if i := strings.IndexFunc(head, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i >= 0 {
		head = head[:i]
	}
	parts := strings.Split(strings.TrimSuffix(head, "."), ".")
	if len(parts) < 2 || len(parts) > 3 {
		return KernelVersion{}, fmt.Errorf("want major.minor[.patch], got %q", head)
	}
	var nums [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return KernelVersion{}, fmt.Errorf("want major.minor[.patch], got %q", head)
		}
		nums[i] = n
	}
	return KernelVersion{nums[0], nums[1], nums[2]}, nil
}

// natChecksumFixedIn lists the stable series that got the fix backported,
// with their first fixed patch level; every series from 5.7 on has it.
var natChecksumFixedIn = map[[2]int]int{
	{5, 6}: 13, {5, 4}: 41, {4, 19}: 123, {4, 14}: 181,
}

// hasNATChecksumFix reports whether v has the netfilter fix, and names the
// first fixed release of its series (or 5.7) for the log.
func (v KernelVersion) hasNATChecksumFix() (bool, string) {
	if v.Major > 5 || (v.Major == 5 && v.Minor >= 7) {
		return true, "5.7"
	}
	if patch, ok := natChecksumFixedIn[[2]int{v.Major, v.Minor}]; ok {
		return v.Patch >= patch, fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, patch)
	}
	return false, "5.7, or 5.6.13/5.4.41/4.19.123/4.14.181"
}

// UpstreamRelease is the kernel release to judge: uname's release, unless
// the distribution says which upstream kernel its own numbering is based on
// (Ubuntu's /proc/version_signature, "Ubuntu 5.4.0-52.57-generic 5.4.65",
// whose ABI number 5.4.0-52 says nothing about the patch level).
func UpstreamRelease(uname string, versionSignature []byte) string {
	fields := strings.Fields(string(versionSignature))
	if len(fields) >= 3 {
		if _, err := ParseKernelRelease(fields[len(fields)-1]); err == nil {
			return fields[len(fields)-1]
		}
	}
	return uname
}
