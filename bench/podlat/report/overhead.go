package report

import "github.com/overlayd/overlayd/bench/podlat/rtt"

// Overhead compares, for one agent and protocol, the pod-to-pod path
// across nodes with the node-to-node underlay of the same lab.
type Overhead struct {
	Agent    string
	Protocol string
	Underlay Latency
	Overlay  Latency
}

// P50US is the overlay's extra median round trip in microseconds.
func (o Overhead) P50US() float64 { return o.Overlay.P50US - o.Underlay.P50US }

// P99US is the overlay's extra p99 round trip in microseconds.
func (o Overhead) P99US() float64 { return o.Overlay.P99US - o.Underlay.P99US }

// P50Pct is P50US relative to the underlay's median, in percent.
func (o Overhead) P50Pct() float64 { return pct(o.P50US(), o.Underlay.P50US) }

// P99Pct is P99US relative to the underlay's p99, in percent.
func (o Overhead) P99Pct() float64 { return pct(o.P99US(), o.Underlay.P99US) }

func pct(delta, base float64) float64 {
	if base == 0 {
		return 0
	}
	return 100 * delta / base
}

// Overheads lists one row per agent and protocol for which both the
// cross-node and the underlay paths have round trips.
func Overheads(r Report) []Overhead {
	var rows []Overhead
	for _, a := range r.Agents {
		for _, proto := range rtt.Protocols() {
			ul := a.Path(PathUnderlay).ByProtocol(string(proto))
			ov := a.Path(PathCrossNode).ByProtocol(string(proto))
			if ul == nil || ov == nil || ul.Count == 0 || ov.Count == 0 {
				continue
			}
			rows = append(rows, Overhead{Agent: a.Name, Protocol: string(proto), Underlay: *ul, Overlay: *ov})
		}
	}
	return rows
}

// ThroughputRow puts an agent's three streams side by side.
type ThroughputRow struct {
	Agent                         string
	Underlay, CrossNode, SameNode *Throughput
}

// Ratio is the overlay's throughput as a fraction of the underlay's (0
// when either is missing).
func (t ThroughputRow) Ratio() float64 {
	if t.Underlay == nil || t.CrossNode == nil || t.Underlay.BitsPerSecond == 0 {
		return 0
	}
	return t.CrossNode.BitsPerSecond / t.Underlay.BitsPerSecond
}

// ThroughputRows lists agents with at least one throughput result.
func ThroughputRows(r Report) []ThroughputRow {
	var rows []ThroughputRow
	for _, a := range r.Agents {
		row := ThroughputRow{
			Agent:     a.Name,
			Underlay:  throughputOf(a.Path(PathUnderlay)),
			CrossNode: throughputOf(a.Path(PathCrossNode)),
			SameNode:  throughputOf(a.Path(PathSameNode)),
		}
		if row.Underlay != nil || row.CrossNode != nil || row.SameNode != nil {
			rows = append(rows, row)
		}
	}
	return rows
}

func throughputOf(p *Path) *Throughput {
	if p == nil {
		return nil
	}
	return p.Throughput
}
