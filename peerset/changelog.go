package peerset

import (
	"log/slog"

	"github.com/overlayd/overlayd/subnet"
)

// changeLog collects what a Step did to the peer set, to log one line per
// peer at small scale and one aggregate line at large scale.
type changeLog struct {
	counts  map[string]int
	details []peerChange
}

type peerChange struct {
	what string
	p    Peer
}

// maxPeerLines is the number of changes logged one per line; above it a
// Step is logged as one line of counts.
const maxPeerLines = 8

func (c *changeLog) note(what string, p Peer) {
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[what]++
	if len(c.details) <= maxPeerLines {
		c.details = append(c.details, peerChange{what: what, p: p})
	}
}

func (c *changeLog) report(log *slog.Logger) {
	if len(c.details) == 0 {
		return
	}
	if len(c.details) <= maxPeerLines {
		for _, d := range c.details {
			log.Info(d.what, "lease", subnet.KeyName(d.p.Subnet), "public_ip", d.p.PublicIP,
				"vtep_mac", d.p.MACString(), "dst", d.p.Dst)
		}
		return
	}
	log.Info("peers changed", "added", c.counts["peer added"], "changed", c.counts["peer changed"],
		"removed", c.counts["peer removed"])
}
