package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/overlayd/overlayd/internal/lab"
)

// report prints the nodes, the ping matrix and each node's flannel.1
// routes and FDB entries.
func report(ctx context.Context, out io.Writer, l *lab.Lab, m lab.PingMatrix) {
	fmt.Fprintf(out, "\n== nodes (%s underlay)\n", l.Topology)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tUNDERLAY IP\tPUBLIC IP\tSUBNET\tVTEP MAC\tPODS")
	for _, n := range l.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.UnderlayIP, n.PublicIP, n.Subnet.Lease(), vtepMAC(ctx, l, n), podIPs(n))
	}
	tw.Flush()

	fmt.Fprintf(out, "\n== pings (%d pairs, %d failed)\n%s", len(m.Results), len(m.Failures()), m)
	if err := m.Err(); err != nil {
		fmt.Fprintln(out, err)
	}

	for _, n := range l.Nodes {
		fmt.Fprintf(out, "\n== %s: %s\n", n.Name, lab.FlannelDevice)
		s, err := l.DeviceState(ctx, n, lab.FlannelDevice)
		if err != nil {
			fmt.Fprintf(out, "  (%v)\n", err)
			continue
		}
		printLines(out, "ip route", s.Routes)
		printLines(out, "bridge fdb", s.FDB)
	}
}

func vtepMAC(ctx context.Context, l *lab.Lab, n *lab.Node) string {
	attrs, err := l.NodeLease(ctx, n)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	mac, err := lab.VtepMAC(attrs)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return mac
}

func podIPs(n *lab.Node) string {
	s := ""
	for i, p := range n.Pods {
		if i > 0 {
			s += ","
		}
		s += p.IP.String()
	}
	return s
}

func printLines(out io.Writer, title string, lines []string) {
	fmt.Fprintf(out, "  %s:\n", title)
	if len(lines) == 0 {
		fmt.Fprintln(out, "    (none)")
	}
	for _, l := range lines {
		fmt.Fprintf(out, "    %s\n", l)
	}
}
