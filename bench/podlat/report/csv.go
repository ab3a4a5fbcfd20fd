package report

import (
	"encoding/csv"
	"io"
	"strconv"
)

// WriteCSV writes every timed round trip: agent, path, protocol, the
// round trip's index and its duration in nanoseconds.
func WriteCSV(w io.Writer, r Report) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"agent", "path", "protocol", "seq", "rtt_ns"})
	for _, a := range r.Agents {
		for _, p := range a.Paths {
			for _, l := range p.Latency {
				for i, d := range l.RTTs {
					cw.Write([]string{a.Name, p.ID, l.Protocol, strconv.Itoa(i), strconv.FormatInt(d.Nanoseconds(), 10)})
				}
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
