package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/overlayd/overlayd/statusdoc"
	"github.com/overlayd/overlayd/subnet"
)

func TestHealthyNodeAllOK(t *testing.T) {
	rep := Run(context.Background(), healthyEnv())
	for _, r := range rep.Results {
		if r.Status != OK {
			t.Errorf("%s/%s: %s: %s", r.Group, r.Check, r.Status, r.Detail)
		}
	}
	if rep.ExitCode() != ExitOK {
		t.Errorf("exit code %d, want %d", rep.ExitCode(), ExitOK)
	}
}

// TestFailuresNamed: each broken thing is reported by the check that
// owns it, with the status and the words an operator looks for.
func TestFailuresNamed(t *testing.T) {
	tests := []struct {
		name         string
		breakIt      func(e *Env)
		group, check string
		want         Status
		words        []string
	}{
		{"ip_forward off", func(e *Env) { e.Sysctl.(fakeSysctls)["net.ipv4.ip_forward"] = "0" },
			groupKernel, "ip_forward", Fail, []string{"net.ipv4.ip_forward = 0"}},
		{"vxlan module missing", func(e *Env) {
			e.Modules.(fakeModules)["vxlan"] = false
			n := e.Net.(*fakeNet)
			n.links = n.links[:2]
			e.Status.Device = nil
		}, groupKernel, "vxlan module", Fail, []string{"not loaded"}},
		{"br_netfilter off with kube-proxy", func(e *Env) {
			e.IPT.(fakeIPT)["nat/KUBE-SERVICES"] = []string{"-N KUBE-SERVICES"}
			e.Modules.(fakeModules)["br_netfilter"] = true
			e.Sysctl.(fakeSysctls)["net.bridge.bridge-nf-call-iptables"] = "0"
		}, groupKernel, "br_netfilter", Fail, []string{"bridge-nf-call-iptables = 0"}},
		{"strict rp_filter", func(e *Env) { e.Sysctl.(fakeSysctls)["net.ipv4.conf.all.rp_filter"] = "1" },
			groupKernel, "rp_filter eth0", Warn, []string{"strict"}},
		{"FORWARD DROP without our rule", func(e *Env) {
			e.IPT.(fakeIPT)["filter/FORWARD"] = []string{"-P FORWARD DROP", "-A FORWARD -j DOCKER-USER"}
		},
			groupIPTables, "forward", Fail, []string{"policy DROP", "Docker"}},
		{"DROP rule before ours", func(e *Env) {
			e.IPT.(fakeIPT)["filter/FORWARD"] = []string{"-P FORWARD ACCEPT", "-A FORWARD -j DROP", "-A FORWARD -j FLANNEL-FWD"}
		}, groupIPTables, "forward", Fail, []string{"-A FORWARD -j DROP"}},
		{"kube-proxy on the other backend", func(e *Env) {
			e.Backends = fakeBackends{inUse: "nft", saves: map[string]string{"legacy": "*nat\n:KUBE-SERVICES - [0:0]\n", "nft": ""}}
		}, groupIPTables, "backend", Fail, []string{"iptables-legacy", "nft"}},
		{"masquerade hits outer VXLAN", func(e *Env) {
			ipt := e.IPT.(fakeIPT)
			ipt["raw/OUTPUT"] = []string{"-P OUTPUT ACCEPT"}
			ipt["nat/KUBE-POSTROUTING"] = []string{"-N KUBE-POSTROUTING", "-A KUBE-POSTROUTING -j MASQUERADE --random-fully"}
		}, groupIPTables, "outer VXLAN NAT", Warn, []string{"MASQUERADE"}},
		{"subnet.env deleted", func(e *Env) { delete(e.FS.(fstest.MapFS), "run/flannel/subnet.env") },
			groupFiles, "subnet file", Fail, []string{"no such file or directory"}},
		{"subnet.env stale", func(e *Env) {
			e.FS.(fstest.MapFS)["run/flannel/subnet.env"].Data = []byte("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.9.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
		}, groupFiles, "subnet file", Fail, []string{"stale", "10.244.9.0/24"}},
		{"cni plugin missing", func(e *Env) { delete(e.FS.(fstest.MapFS), "opt/cni/bin/bridge") },
			groupFiles, "cni plugins", Fail, []string{"bridge"}},
		{"cni0 stale address", func(e *Env) {
			n := e.Net.(*fakeNet)
			n.links = append(n.links, Link{Name: "cni0", MTU: 1450, Addrs: []netip.Prefix{netip.MustParsePrefix("10.244.7.1/24")}})
		}, groupFiles, "cni0 address", Fail, []string{"10.244.7.1/24", "ip link delete cni0"}},
		{"stale pod route", func(e *Env) {
			n := e.Net.(*fakeNet)
			n.routes = append(n.routes, Route{Dst: netip.MustParsePrefix("10.244.3.0/24"), Dev: "eth0", Type: "unicast"})
		}, groupFiles, "pod network routes", Fail, []string{"10.244.3.0/24 dev eth0"}},
		{"wrong public IP", func(e *Env) { e.Probe.(*fakeProber).seen = netip.MustParseAddr("192.0.2.99") },
			groupAddresses, "advertised address", Fail, []string{"sees this node as 192.0.2.99", "--public-ip=192.0.2.99"}},
		{"duplicate public IP", func(e *Env) {
			s := e.Store.(*fakeStore)
			s.leases = append(s.leases, subnet.Lease{Subnet: netip.MustParsePrefix("10.244.5.0/24"), Attrs: subnet.LeaseAttrs{PublicIP: ownIP, BackendType: "vxlan"}})
			e.Probe.(*fakeProber).reachable[netip.MustParseAddr("10.244.5.0")] = true
		}, groupAddresses, "public IP unique", Fail, []string{"10.244.5.0/24", "also advertise 192.0.2.10"}},
		{"peer on loopback", func(e *Env) {
			s := e.Store.(*fakeStore)
			s.leases[1].Attrs.PublicIP = netip.MustParseAddr("127.0.0.1")
		}, groupAddresses, "peer addresses", Fail, []string{"advertises 127.0.0.1"}},
		{"8472 blocked", func(e *Env) { delete(e.Probe.(*fakeProber).reachable, peerSub.Addr()) },
			groupReach, "peer 10.244.2.0/24", Fail, []string{"UDP 8472 (VXLAN) is blocked"}},
		{"8472 blocked, as the daemon saw it", func(e *Env) {
			delete(e.Probe.(*fakeProber).reachable, peerSub.Addr())
			e.Status.Health = &statusdoc.Health{Peers: []statusdoc.PeerHealth{{Subnet: peerSub.String(),
				Overlay:  statusdoc.PathHealth{State: "unreachable", Since: now.Add(-time.Minute), Sent: 7, Lost: 6},
				Underlay: statusdoc.PathHealth{State: "reachable", Sent: 7}}}}
		}, groupReach, "peer 10.244.2.0/24", Fail, []string{"UDP 8472 (VXLAN) is blocked", "overlayd's probes: overlay unreachable since 11:59:00 (6/7 lost), underlay reachable"}},
		{"peer down", func(e *Env) {
			p := e.Probe.(*fakeProber)
			delete(p.reachable, peerSub.Addr())
			delete(p.responder, peerIP)
		}, groupReach, "peer 10.244.2.0/24", Fail, []string{"peer is down"}},
		{"MTU black hole", func(e *Env) { e.Probe.(*fakeProber).pathMTU = 1400 },
			groupReach, "path MTU", Fail, []string{"MTU 1450", "carries 139"}},
		{"etcd unreachable", func(e *Env) { e.Store.(*fakeStore).err = errors.New("context deadline exceeded: connection refused") },
			groupStore, "reachable", Fail, []string{"etcd unreachable"}},
		{"etcd TLS", func(e *Env) { e.Store, e.StoreErr = nil, errors.New("x509: certificate signed by unknown authority") },
			groupStore, "reachable", Fail, []string{"TLS handshake"}},
		{"kube mode", func(e *Env) { e.Store, e.StoreErr = nil, fmt.Errorf("--kube-subnet-mgr: %w", ErrStoreNotChecked) },
			groupStore, "reachable", Skip, []string{"--kube-subnet-mgr"}},
		{"clock skew", func(e *Env) {
			e.ServerTime = func(context.Context) (time.Time, error) { return now.Add(-2 * time.Minute), nil }
		}, groupStore, "clock", Warn, []string{"2m0s off"}},
		{"pool full", func(e *Env) {
			e.Store.(*fakeStore).config = []byte(`{"Network":"10.244.0.0/22","SubnetLen":24,"Backend":{"Type":"vxlan"}}`)
			s := e.Store.(*fakeStore)
			for _, p := range []string{"10.244.0.0/24", "10.244.3.0/24"} {
				s.leases = append(s.leases, subnet.Lease{Subnet: netip.MustParsePrefix(p), Attrs: subnet.LeaseAttrs{PublicIP: netip.MustParseAddr("192.0.2.50"), BackendType: "vxlan"}})
			}
		}, groupStore, "subnet pool", Fail, []string{"3 of 3"}},
		{"nftables mode", func(e *Env) {
			e.Store.(*fakeStore).config = []byte(`{"Network":"10.244.0.0/16","EnableNFTables":true,"Backend":{"Type":"vxlan"}}`)
		}, groupIPTables, "forward", Skip, []string{"nftables mode"}},
		{"daemon not running", func(e *Env) { e.Status, e.StatusErr = nil, errors.New("connection refused") },
			groupDaemon, "running", Warn, []string{"one-shot"}},
		{"offload error", func(e *Env) { e.Status.Device.TxChecksumOffload.Error = "ethtool: operation not supported" },
			"offload", "tx checksum", Warn, []string{"operation not supported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := healthyEnv()
			tt.breakIt(e)
			rep := Run(context.Background(), e)
			res, ok := rep.Find(tt.group, tt.check)
			if !ok {
				t.Fatalf("no result %s/%s in\n%s", tt.group, tt.check, table(rep))
			}
			if res.Status != tt.want {
				t.Errorf("%s/%s: %s (%s), want %s", tt.group, tt.check, res.Status, res.Detail, tt.want)
			}
			for _, w := range tt.words {
				if !strings.Contains(res.Detail+" "+res.Fix, w) {
					t.Errorf("%s/%s: %q lacks %q", tt.group, tt.check, res.Detail+" fix: "+res.Fix, w)
				}
			}
			if res.Status > OK && res.Fix == "" {
				t.Errorf("%s/%s: no fix given", tt.group, tt.check)
			}
			if want := map[Status]int{Warn: ExitWarnings, Fail: ExitFailures}[tt.want]; rep.ExitCode() < want {
				t.Errorf("exit code %d, want at least %d", rep.ExitCode(), want)
			}
		})
	}
}

// TestFixChangesOnlyWithFlag: without --fix nothing is written; with it
// the sysctls and the module are set and the report says so.
func TestFixChangesOnlyWithFlag(t *testing.T) {
	for _, fix := range []bool{false, true} {
		e := healthyEnv()
		sys := e.Sysctl.(fakeSysctls)
		sys["net.ipv4.ip_forward"] = "0"
		sys["net.ipv4.conf.all.rp_filter"] = "1"
		e.Opts.Fix = fix
		rep := Run(context.Background(), e)
		fwd, _ := rep.Find(groupKernel, "ip_forward")
		rp, _ := rep.Find(groupKernel, "rp_filter eth0")
		if !fix {
			if sys["net.ipv4.ip_forward"] != "0" || sys["net.ipv4.conf.all.rp_filter"] != "1" || fwd.Changed != "" {
				t.Errorf("without --fix: sysctls %v, changed %q", sys, fwd.Changed)
			}
			continue
		}
		if sys["net.ipv4.ip_forward"] != "1" || fwd.Status != OK || fwd.Changed != "net.ipv4.ip_forward: 0 -> 1" {
			t.Errorf("--fix ip_forward: now %s, result %+v", sys["net.ipv4.ip_forward"], fwd)
		}
		if sys["net.ipv4.conf.all.rp_filter"] != "2" || !strings.Contains(rp.Changed, "net.ipv4.conf.all.rp_filter: 1 -> 2") {
			t.Errorf("--fix rp_filter: now %s, result %+v", sys["net.ipv4.conf.all.rp_filter"], rp)
		}
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	e := healthyEnv()
	e.Sysctl.(fakeSysctls)["net.ipv4.ip_forward"] = "0"
	rep := Run(context.Background(), e)
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if back.Worst != Fail || len(back.Results) != len(rep.Results) || !strings.Contains(buf.String(), `"status": "fail"`) {
		t.Errorf("JSON round trip: worst %s, %d results\n%s", back.Worst, len(back.Results), buf.String())
	}
}

func TestSysctlPathKeepsDottedDevice(t *testing.T) {
	tests := map[string]string{
		"net.ipv4.ip_forward":               "/x/proc/sys/net/ipv4/ip_forward",
		"net.ipv4.conf.flannel.1.rp_filter": "/x/proc/sys/net/ipv4/conf/flannel.1/rp_filter",
		"net.ipv4.conf.all.rp_filter":       "/x/proc/sys/net/ipv4/conf/all/rp_filter",
	}
	for name, want := range tests {
		if got := (ProcSysctls{Root: "/x"}).path(name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

func table(r Report) string {
	var b bytes.Buffer
	r.WriteTable(&b)
	return b.String()
}

// TestReportTable: one line per check with its mark, the fix and the
// change under it, and the counts at the end.
func TestReportTable(t *testing.T) {
	e := healthyEnv()
	e.Sysctl.(fakeSysctls)["net.ipv4.ip_forward"] = "0"
	e.Opts.Fix = true
	e.IPT.(fakeIPT)["filter/FORWARD"] = []string{"-P FORWARD DROP"}
	out := table(Run(context.Background(), e))
	squeezed := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{
		"✓ daemon running overlayd runs", "✗ iptables forward policy DROP", "fix: run overlayd with --iptables-forward-rules",
		"changed: net.ipv4.ip_forward: 0 -> 1", "0 warnings, 1 failures",
	} {
		if !strings.Contains(squeezed, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
