package csumtrigger

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

// Counters are the kernel's checksum and retransmission counters of one
// namespace (/proc/net/snmp, what `nstat` reads).
type Counters struct {
	UDPInCsumErrors uint64 // outer VXLAN packets dropped for a bad UDP checksum
	UDPInErrors     uint64
	TCPInCsumErrors uint64 // inner segments dropped for a bad TCP checksum
	TCPRetransSegs  uint64
}

// Sub returns c - before, field by field.
func (c Counters) Sub(before Counters) Counters {
	return Counters{
		UDPInCsumErrors: c.UDPInCsumErrors - before.UDPInCsumErrors,
		UDPInErrors:     c.UDPInErrors - before.UDPInErrors,
		TCPInCsumErrors: c.TCPInCsumErrors - before.TCPInCsumErrors,
		TCPRetransSegs:  c.TCPRetransSegs - before.TCPRetransSegs,
	}
}

// ReadCounters reads ns's /proc/net/snmp.
func ReadCounters(ctx context.Context, ns string) (Counters, error) {
	out, err := netnsutil.Exec(ctx, ns, "cat", "/proc/net/snmp")
	if err != nil {
		return Counters{}, err
	}
	snmp, err := ParseSNMP(out)
	if err != nil {
		return Counters{}, fmt.Errorf("%s /proc/net/snmp: %w", ns, err)
	}
	return Counters{
		UDPInCsumErrors: snmp["Udp"]["InCsumErrors"],
		UDPInErrors:     snmp["Udp"]["InErrors"],
		TCPInCsumErrors: snmp["Tcp"]["InCsumErrors"],
		TCPRetransSegs:  snmp["Tcp"]["RetransSegs"],
	}, nil
}

// ParseSNMP reads /proc/net/snmp: per protocol a line of names and a line
// of values, both starting with "Proto:".
func ParseSNMP(text string) (map[string]map[string]uint64, error) {
	out := map[string]map[string]uint64{}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || len(names) != len(values) || names[0] != values[0] {
			return nil, fmt.Errorf("line %d: names %q and values %q do not pair", i+1, lines[i], lines[i+1])
		}
		proto := strings.TrimSuffix(names[0], ":")
		out[proto] = map[string]uint64{}
		for j := 1; j < len(names); j++ {
			v, err := strconv.ParseInt(values[j], 10, 64) // some fields (MaxConn) are -1
			if err != nil {
				return nil, fmt.Errorf("%s %s: %q: %w", proto, names[j], values[j], err)
			}
			if v >= 0 {
				out[proto][names[j]] = uint64(v)
			}
		}
	}
	return out, nil
}
