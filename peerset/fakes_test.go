package peerset

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/internal/metrictest"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

// recorder is every consumer at once: it keeps what the Set sent.
type recorder struct {
	replaces   [][]Peer
	updates    [][]Change
	early      [][]Change
	candRepl   [][]Candidate
	candSet    []Candidate
	candDrop   []netip.Prefix
	addrs      [][]netip.Addr
	addrsCalls int
}

func (r *recorder) ReplacePeers(p []Peer)  { r.replaces = append(r.replaces, slices.Clone(p)) }
func (r *recorder) UpdatePeers(c []Change) { r.updates = append(r.updates, slices.Clone(c)) }
func (r *recorder) UpdateEarlyPeers(c []Change) {
	r.early = append(r.early, slices.Clone(c))
}
func (r *recorder) ReplaceCandidates(cs []Candidate) {
	r.candRepl = append(r.candRepl, slices.Clone(cs))
}
func (r *recorder) UpdateCandidates(set []Candidate, removed []netip.Prefix) {
	r.candSet = append(r.candSet, set...)
	r.candDrop = append(r.candDrop, removed...)
}
func (r *recorder) SetAddrs(a []netip.Addr) {
	r.addrs = append(r.addrs, slices.Clone(a))
	r.addrsCalls++
}

// lastChanges returns the changes of the last UpdatePeers call.
func (r *recorder) lastChanges() []Change {
	if len(r.updates) == 0 {
		return nil
	}
	return r.updates[len(r.updates)-1]
}

func (r *recorder) lastAddrs() []string {
	if len(r.addrs) == 0 {
		return nil
	}
	var out []string
	for _, a := range r.addrs[len(r.addrs)-1] {
		out = append(out, a.String())
	}
	return out
}

var (
	testNetwork = netip.MustParsePrefix("10.244.0.0/16")
	ownSubnet   = netip.MustParsePrefix("10.244.99.0/24")
)

// fixture is a Set stepped by hand, its consumers recorded, its log kept.
type fixture struct {
	s   *Set
	rec *recorder
	log *bytes.Buffer
	reg *prometheus.Registry
}

func newFixture(t *testing.T, edit ...func(*Options)) *fixture {
	t.Helper()
	rec := &recorder{}
	buf := &bytes.Buffer{}
	reg := prometheus.NewRegistry()
	o := Options{Network: testNetwork, OwnSubnet: ownSubnet, Peers: rec, Candidates: rec, Addrs: rec,
		Logger: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), Registerer: reg,
		Clock: subnettest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	for _, e := range edit {
		e(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{s: s, rec: rec, log: buf, reg: reg}
}

// refusedMetric reads overlayd_peer_leases_refused{reason}, 0 when absent.
func (f *fixture) refusedMetric(t *testing.T, reason string) float64 {
	t.Helper()
	v, _ := metrictest.Lookup(t, f.reg, "overlayd_peer_leases_refused", prometheus.Labels{"reason": reason})
	return v
}

// current is the reconciler's peer set as the recorded calls leave it.
func (r *recorder) current() map[netip.Prefix]Peer {
	out := map[netip.Prefix]Peer{}
	if len(r.replaces) > 0 {
		for _, p := range r.replaces[len(r.replaces)-1] {
			out[p.Subnet] = p
		}
	}
	// Updates after the last snapshot (tests replace once, first).
	for _, u := range r.updates {
		for _, c := range u {
			if c.Removed {
				delete(out, c.Peer.Subnet)
			} else {
				out[c.Peer.Subnet] = c.Peer
			}
		}
	}
	return out
}

func (f *fixture) replace(leases ...subnet.Lease) {
	f.s.ReplacePeers(leases)
	f.s.Step()
}

func (f *fixture) update(events ...subnet.Event) {
	f.s.UpdatePeers(events)
	f.s.Step()
}

func (f *fixture) verdict(v Verdict) {
	f.s.SetVerdict(v)
	f.s.Step()
}

// lines returns the log lines at level that contain substr.
func (f *fixture) lines(level, substr string) []string {
	var out []string
	for _, l := range strings.Split(f.log.String(), "\n") {
		if strings.Contains(l, "level="+level) && strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// lease is a vxlan lease for 10.244.<k>.0/24 with VTEP MAC 02:…:<k>,
// PublicIP 203.0.113.<k> and, when private is set, OverlaydPrivateIP.
func lease(k int, private string) subnet.Lease {
	l := subnet.Lease{
		Subnet: netip.MustParsePrefix(fmt.Sprintf("10.244.%d.0/24", k)),
		Attrs: subnet.LeaseAttrs{
			PublicIP:    netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", k)),
			BackendType: subnet.BackendVXLAN,
			BackendData: []byte(fmt.Sprintf(`{"VNI":1,"VtepMAC":"02:00:00:00:00:%02x"}`, k)),
		},
	}
	if private != "" {
		l.Attrs.PrivateIP = netip.MustParseAddr(private)
	}
	return l
}

func mac(k int) [6]byte { return [6]byte{2, 0, 0, 0, 0, byte(k)} }

func added(l subnet.Lease) subnet.Event   { return subnet.Event{Type: subnet.EventAdded, Lease: l} }
func removed(l subnet.Lease) subnet.Event { return subnet.Event{Type: subnet.EventRemoved, Lease: l} }

func unreadable(l subnet.Lease) subnet.Lease { return subnet.Lease{Subnet: l.Subnet, Unreadable: true} }

func malformed(l subnet.Lease) subnet.Lease {
	l.Attrs.BackendData = []byte(`{"VtepMAC":"not a mac"}`)
	return l
}
