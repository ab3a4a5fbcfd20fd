package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/overlayd/overlayd/statusdoc"
)

// statusMain implements `overlayd status`: it reads the running daemon's
// /status and prints it as a table (or the JSON with --json).
func statusMain(args []string, stdout, stderr io.Writer, now func() time.Time) int {
	fs := flag.NewFlagSet("overlayd status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("metrics-addr", envOr("FLANNELD_METRICS_ADDR", "127.0.0.1:9473"), "the daemon's --metrics-addr")
	asJSON := fs.Bool("json", false, "print the raw JSON document")
	maxPeers := fs.Int("peers", 50, "list at most this many peers (0 = none, -1 = all)")
	if err := fs.Parse(args); err != nil {
		return exitCodeFor(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := fetchStatus(ctx, *addr)
	if err != nil {
		fmt.Fprintf(stderr, "overlayd status: %v\n", err)
		return 1
	}
	if *asJSON {
		stdout.Write(raw)
		return 0
	}
	var doc statusdoc.Doc
	if err := json.Unmarshal(raw, &doc); err != nil {
		fmt.Fprintf(stderr, "overlayd status: decode /status from %s: %v\n", *addr, err)
		return 1
	}
	printStatus(stdout, doc, *maxPeers, now())
	return 0
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func fetchStatus(ctx context.Context, addr string) ([]byte, error) {
	url := "http://" + addr + "/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("is overlayd running with --metrics-addr=%s? %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return body, nil
}

func printStatus(w io.Writer, d statusdoc.Doc, maxPeers int, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	state := "starting (subnet file not written yet)"
	if d.Ready {
		state = "ready"
	}
	fmt.Fprintf(tw, "overlayd:\t%s\n", state)
	if d.EtcdAPI != "" {
		fmt.Fprintf(tw, "etcd API:\t%s\n", d.EtcdAPI)
	}
	if d.Underlay.Iface != "" {
		note := ""
		if !d.Underlay.AdvertiseOnHost {
			note = " (on no interface here: expected behind 1:1 NAT)"
		}
		fmt.Fprintf(tw, "underlay:\t%s%s%s\n", d.Underlay.Iface, underlayAddrs(d.Underlay), note)
	}
	if d.Lease != nil {
		note := ""
		if d.Lease.Expired {
			note = "; EXPIRED without a renewal (etcd unreachable?): not ready, another node may be given this subnet"
		}
		fmt.Fprintf(tw, "lease:\t%s, %s%s\n", leaseSubnets(d.Lease), expiry(d.Lease.Expiration, now), note)
	}
	for _, dev := range []*statusdoc.Device{d.Device, d.DeviceV6} {
		if dev == nil {
			continue
		}
		fmt.Fprintf(tw, "device:\t%s, mac %s, mtu %d, local %s, vni %d\n", dev.Name, dev.MAC, dev.MTU, dev.Local, dev.VNI)
		if o := dev.TxChecksumOffload; o != nil {
			fmt.Fprintf(tw, "offload:\ttx checksum %s (%s: %s)%s\n", onOff(o.On), o.Mode, o.Why, errSuffix(o.Error))
		}
	}
	if s := d.Sync; s != nil {
		fmt.Fprintf(tw, "sync:\t%s\n", syncLine(s, now))
	}
	if s := d.SyncV6; s != nil {
		fmt.Fprintf(tw, "sync (IPv6):\t%s\n", syncLine(s, now))
	}
	if ipt := d.IPTables; ipt != nil {
		line := "rules in place"
		if !ipt.InPlace {
			line = "rules NOT in place: " + ipt.LastError
		}
		fmt.Fprintf(tw, "iptables:\t%s, checked %s ago, %d repairs\n", line, ago(ipt.LastCheck, now), ipt.Repairs)
	}
	tw.Flush()
	if d.Sync != nil && maxPeers != 0 {
		printPeers(w, d.Sync.Peers, maxPeers)
	}
	if d.SyncV6 != nil && maxPeers != 0 {
		printPeers(w, d.SyncV6.Peers, maxPeers)
	}
	if d.Health != nil && maxPeers != 0 {
		printHealth(w, d.Health, maxPeers, now)
	}
}

// printHealth lists each peer's probe state: over the overlay (VXLAN)
// and the underlay, the last round trip, and the losses.
func printHealth(w io.Writer, h *statusdoc.Health, max int, now time.Time) {
	fmt.Fprintf(w, "\nhealth probes: port %d, every %s, %d peers per round\n", h.Port, h.Interval, h.Sample)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER SUBNET\tOVERLAY\tUNDERLAY\tLOST/SENT (OVERLAY)\tLOST/SENT (UNDERLAY)")
	for i, p := range h.Peers {
		if max > 0 && i == max {
			fmt.Fprintf(tw, "... %d more (--peers=-1 lists all)\n", len(h.Peers)-max)
			break
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d/%d\n", p.Subnet, pathLine(p.Overlay, now), pathLine(p.Underlay, now),
			p.Overlay.Lost, p.Overlay.Sent, p.Underlay.Lost, p.Underlay.Sent)
	}
	tw.Flush()
}

func pathLine(p statusdoc.PathHealth, now time.Time) string {
	switch p.State {
	case "reachable":
		return fmt.Sprintf("reachable, rtt %s", p.RTT)
	case "unreachable":
		return fmt.Sprintf("UNREACHABLE for %s", ago(p.Since, now))
	}
	return "not probed yet"
}

func syncLine(s *statusdoc.Sync, now time.Time) string {
	state := "in sync"
	if !s.InSync {
		state = "OUT OF SYNC"
		if s.LastError != "" {
			state += " (" + s.LastError + ")"
		}
	}
	c := s.Counts
	routes := fmt.Sprintf("%d routes", c.Kernel.Routes)
	if c.KernelNexthops > 0 {
		routes += fmt.Sprintf(", %d nexthops", c.KernelNexthops)
	}
	if s.RouteMode != "" {
		routes += " (" + s.RouteMode + ")"
	}
	return fmt.Sprintf("%s; %d/%d peers programmed; kernel %d neighbours, %d fdb, %s; last full pass %s ago, last pass %s",
		state, c.PeersProgrammed, c.Peers, c.Kernel.Neighbours, c.Kernel.FDB, routes, ago(s.LastFullPass, now), s.LastPassDuration)
}

func printPeers(w io.Writer, peers []statusdoc.Peer, max int) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER SUBNET\tPUBLIC IP\tVTEP MAC\tFDB DST\tSTATE")
	for i, p := range peers {
		if max > 0 && i == max {
			fmt.Fprintf(tw, "... %d more (--peers=-1 lists all)\n", len(peers)-max)
			break
		}
		state := "programmed"
		if p.Direct {
			state = "programmed (direct route)"
		}
		if !p.Programmed {
			state = "pending"
			if p.Error != "" {
				state = "failing: " + p.Error
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Subnet, p.PublicIP, p.MAC, p.Dst, state)
	}
	tw.Flush()
}

// underlayAddrs is the bind and advertised addresses of each family on.
func underlayAddrs(u statusdoc.Underlay) string {
	var out string
	if u.Bind != "" {
		out += fmt.Sprintf(", bind %s, advertise %s", u.Bind, u.Advertise)
	}
	if u.Bind6 != "" {
		out += fmt.Sprintf(", bind %s, advertise %s", u.Bind6, u.Advertise6)
	}
	return out
}

// leaseSubnets is the lease's subnets: IPv4, IPv6, or both.
func leaseSubnets(l *statusdoc.Lease) string {
	switch {
	case l.IPv6Subnet == "":
		return l.Subnet
	case l.Subnet == "":
		return l.IPv6Subnet
	}
	return l.Subnet + " and " + l.IPv6Subnet
}

func expiry(t, now time.Time) string {
	if t.IsZero() {
		return "reservation (no expiry)"
	}
	return fmt.Sprintf("expires %s (in %s)", t.UTC().Format(time.RFC3339), t.Sub(now).Round(time.Minute))
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(100 * time.Millisecond).String()
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return "; error: " + e
}
