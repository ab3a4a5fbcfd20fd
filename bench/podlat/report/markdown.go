package report

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteMarkdown writes the report with its title at heading level
// `level` (1 for "#"), sections one level below.
func WriteMarkdown(w io.Writer, r Report, level int) error {
	var b strings.Builder
	h := func(extra int, title string) {
		fmt.Fprintf(&b, "\n%s %s\n\n", strings.Repeat("#", level+extra), title)
	}
	fmt.Fprintf(&b, "%s Pod latency report\n\n", strings.Repeat("#", level))
	writeSetup(&b, r)
	h(1, "Overlay overhead over the underlay")
	writeOverheads(&b, r)
	h(1, "Latency per path")
	writeLatency(&b, r)
	if rows := ThroughputRows(r); len(rows) > 0 {
		h(1, "Throughput per path")
		writeThroughput(&b, rows)
	}
	if errs := agentErrors(r); errs != "" {
		h(1, "Errors")
		b.WriteString(errs)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeSetup(b *strings.Builder, r Report) {
	m, p := r.Machine, r.Params
	fmt.Fprintf(b, "- Date: %s (run took %s)\n", r.Started.UTC().Format(time.RFC3339), r.Finished.Sub(r.Started).Round(time.Second))
	fmt.Fprintf(b, "- Machine: %d CPUs, %s; Linux %s; %s", m.CPUs, m.CPUModel, m.Kernel, m.Go)
	if m.Iperf3 != "" {
		fmt.Fprintf(b, "; %s", m.Iperf3)
	}
	if m.LoadAvg != "" {
		fmt.Fprintf(b, "; load average %s at the start", m.LoadAvg)
	}
	b.WriteString("\n")
	fmt.Fprintf(b, "- Cluster: %d nodes × %d pods, %s underlay (veths on one bridge), a fresh lab and etcd per agent\n",
		p.Nodes, p.PodsPerNode, p.Topology)
	fmt.Fprintf(b, "- Latency: %d round trips per path and protocol after %d warm-up ones, %d-byte payload, one in flight; nearest-rank percentiles\n",
		p.RoundTrips, p.Warmup, p.PayloadBytes)
	if p.ThroughputTool != "" {
		fmt.Fprintf(b, "- Throughput: one TCP stream for %gs per path (%s)\n", p.ThroughputSeconds, p.ThroughputTool)
	}
	fmt.Fprintf(b, "- Agents: %s\n", agentList(r))
	fmt.Fprintf(b, "- Command: `%s`\n", r.Command)
}

func agentList(r Report) string {
	var parts []string
	for _, a := range r.Agents {
		parts = append(parts, fmt.Sprintf("%s (`%s`)", a.Name, a.Template))
	}
	return strings.Join(parts, ", ")
}

func writeOverheads(b *strings.Builder, r Report) {
	rows := Overheads(r)
	if len(rows) == 0 {
		b.WriteString("No agent has both a cross-node and an underlay result.\n")
		return
	}
	b.WriteString("| agent | proto | underlay p50 | overlay p50 | p50 overhead | underlay p99 | overlay p99 | p99 overhead |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, o := range rows {
		fmt.Fprintf(b, "| %s | %s | %s | %s | **%s** | %s | %s | **%s** |\n", o.Agent, o.Protocol,
			usCell(o.Underlay.P50US), usCell(o.Overlay.P50US), deltaCell(o.P50US(), o.P50Pct()),
			usCell(o.Underlay.P99US), usCell(o.Overlay.P99US), deltaCell(o.P99US(), o.P99Pct()))
	}
	rows2 := ThroughputRows(r)
	if len(rows2) == 0 {
		return
	}
	b.WriteString("\n| agent | underlay throughput | overlay throughput | overlay / underlay |\n")
	b.WriteString("|---|---:|---:|---:|\n")
	for _, t := range rows2 {
		ratio := "–"
		if t.Ratio() > 0 {
			ratio = fmt.Sprintf("%.0f%%", 100*t.Ratio())
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", t.Agent, bpsCell(t.Underlay), bpsCell(t.CrossNode), ratio)
	}
}

func writeLatency(b *strings.Builder, r Report) {
	b.WriteString("Round-trip times in microseconds.\n\n")
	b.WriteString("| agent | path | proto | from → to | p50 | p90 | p99 | p99.9 | mean | max | lost |\n")
	b.WriteString("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, a := range r.Agents {
		for _, p := range a.Paths {
			for _, l := range p.Latency {
				fmt.Fprintf(b, "| %s | %s | %s | %s → %s | %s | %s | %s | %s | %s | %s | %d |\n",
					a.Name, p.ID, l.Protocol, p.From, p.To,
					num(l.P50US), num(l.P90US), num(l.P99US), num(l.P999US), num(l.MeanUS), num(l.MaxUS), l.Lost)
			}
		}
	}
	b.WriteString("\nPaths: ")
	var titles []string
	for _, id := range PathIDs() {
		titles = append(titles, fmt.Sprintf("%s = %s", id, PathTitle(id)))
	}
	b.WriteString(strings.Join(titles, "; ") + ".\n")
}

func writeThroughput(b *strings.Builder, rows []ThroughputRow) {
	b.WriteString("| agent | underlay | cross-node | same-node |\n")
	b.WriteString("|---|---:|---:|---:|\n")
	for _, t := range rows {
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", t.Agent, bpsCell(t.Underlay), bpsCell(t.CrossNode), bpsCell(t.SameNode))
	}
}

func agentErrors(r Report) string {
	var b strings.Builder
	for _, a := range r.Agents {
		if a.Error != "" {
			fmt.Fprintf(&b, "- %s: %s\n", a.Name, strings.ReplaceAll(a.Error, "\n", " "))
		}
	}
	return b.String()
}

func num(v float64) string { return fmt.Sprintf("%.1f", v) }

func usCell(v float64) string { return fmt.Sprintf("%.1f µs", v) }

func deltaCell(delta, pct float64) string {
	return fmt.Sprintf("%+.1f µs (%+.0f%%)", delta, pct)
}

func bpsCell(t *Throughput) string {
	if t == nil {
		return "–"
	}
	cell := FormatBPS(t.BitsPerSecond)
	if t.Retransmits > 0 {
		cell += fmt.Sprintf(" (%d retr.)", t.Retransmits)
	}
	return cell
}

// FormatBPS renders a rate in Gbit/s, or Mbit/s below 1 Gbit/s.
func FormatBPS(bps float64) string {
	if bps >= 1e9 {
		return fmt.Sprintf("%.2f Gbit/s", bps/1e9)
	}
	return fmt.Sprintf("%.0f Mbit/s", bps/1e6)
}
