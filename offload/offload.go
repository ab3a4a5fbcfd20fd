// Package offload decides whether the VXLAN device keeps the kernel's
// transmit checksum offload (tx-checksum-ip-generic, and with it TCP
// segmentation offload), from the operator's mode and whether the node's
// outer VXLAN packets are exempt from NAT.
//
// Why it matters (docs/public-cloud.md, "Checksum offload"): with offload on
// one pod-to-pod TCP stream is several times faster, because the kernel
// segments and checksums late; flanneld leaves it on. With it off, every
// inner segment is checksummed and segmented in software before
// encapsulation.
//
// What breaks with it on, measured on Linux 6.18 (bench/csumtrigger): the
// encapsulated packet keeps the inner packet's firewall mark. kube-proxy
// before Kubernetes 1.19 masqueraded every packet carrying its mark, and so
// masqueraded the outer VXLAN packet too; the port rewrite then leaves a
// wrong outer UDP checksum on the first packet of each flow, the peer drops
// it, and each new connection through a Service stalls until TCP
// retransmits (1 s here, up to the well-known 63 s on older kernels).
// Checksumming in software hides the fault; keeping the outer packets out
// of conntrack (and so out of every NAT rule) removes its cause.
//
// Auto mode therefore keeps offload on and asks for that exemption (the
// iptables package's OVERLAYD-NOTRACK chain); only if the exemption cannot
// be put in place does it turn offload off.
package offload

import (
	"fmt"
	"strings"
)

// Mode is the operator's choice: --tx-checksum-offload.
type Mode string

// The modes.
const (
	Auto Mode = "auto" // on, with the outer VXLAN packets exempt from NAT; off if that exemption fails
	On   Mode = "on"   // keep the kernel's offload, no exemption (flanneld's data path exactly)
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

// WantsExemption reports whether mode asks for the outer VXLAN packets to
// be kept out of conntrack and NAT.
func (m Mode) WantsExemption() bool { return m == Auto }

// Why says, in one short word, why the decision is what it is; it is the
// label of the metric.
type Why string

// The reasons.
const (
	WhyFlag           Why = "flag"             // the operator chose on or off
	WhyExempt         Why = "vxlan-exempt"     // auto: outer VXLAN is never NATed, so offload is safe
	WhyExemptionFails Why = "exemption-failed" // auto: the exemption could not be installed
)

// Decision is whether offload stays on, and why.
type Decision struct {
	Mode   Mode
	On     bool
	Why    Why
	Detail string // a sentence for the log and /status
}

// Decide applies mode; exemptErr is the result of installing the
// exemption (only looked at in auto mode).
func Decide(mode Mode, exemptErr error) Decision {
	switch mode {
	case On:
		return Decision{Mode: mode, On: true, Why: WhyFlag,
			Detail: "--tx-checksum-offload=on: the kernel's offload is kept and outer VXLAN is not exempted from NAT (flanneld's data path)"}
	case Off:
		return Decision{Mode: mode, On: false, Why: WhyFlag,
			Detail: "--tx-checksum-offload=off: checksums are computed in software before encapsulation"}
	}
	if exemptErr != nil {
		return Decision{Mode: Auto, On: false, Why: WhyExemptionFails,
			Detail: fmt.Sprintf("outer VXLAN could not be exempted from NAT (%v): offload off, so a NAT rule cannot corrupt checksums", exemptErr)}
	}
	return Decision{Mode: Auto, On: true, Why: WhyExempt,
		Detail: "outer VXLAN packets are exempt from conntrack and NAT: offload kept on, as flanneld does"}
}
