package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/statusdoc"
)

func sampleStatus(now time.Time) statusdoc.Doc {
	return statusdoc.Doc{
		Ready: true, EtcdAPI: "v3",
		Underlay: statusdoc.Underlay{Iface: "ens4", Bind: "10.128.0.5", Advertise: "203.0.113.7", AdvertiseOnHost: false},
		Lease:    &statusdoc.Lease{Subnet: "10.244.3.0/24", Expiration: now.Add(23 * time.Hour)},
		Device: &statusdoc.Device{Name: "flannel.1", MAC: "42:07:40:10:9d:dc", MTU: 1410, Local: "10.128.0.5", VNI: 1,
			TxChecksumOffload: &statusdoc.Offload{On: true, Mode: "auto", Why: "vxlan-exempt"}},
		Sync: &statusdoc.Sync{Synced: true, InSync: true, LastFullPass: now.Add(-3 * time.Second), LastPassDuration: "1.2ms",
			Counts: backend.StatusCounts{Peers: 2, PeersProgrammed: 1, Kernel: backend.EntryCounts{Neighbours: 1, FDB: 1, Routes: 1}},
			Peers: []statusdoc.Peer{
				{Subnet: "10.244.37.0/24", PublicIP: "203.0.113.9", MAC: "56:b3:03:00:ef:bd", Dst: "203.0.113.9", Programmed: true},
				{Subnet: "10.244.38.0/24", PublicIP: "203.0.113.10", MAC: "56:b3:03:00:ef:be", Dst: "203.0.113.10", Error: "route: no buffer space"},
			}},
		IPTables: &statusdoc.IPTables{LastCheck: now.Add(-time.Second), InPlace: true},
	}
}

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	checkPrinted(t, sampleStatus(now), now,
		"overlayd:  ready",
		"underlay:  ens4, bind 10.128.0.5, advertise 203.0.113.7 (on no interface here: expected behind 1:1 NAT)",
		"lease:     10.244.3.0/24, expires 2026-11-23T11:00:00Z (in 23h0m0s)",
		"device:    flannel.1, mac 42:07:40:10:9d:dc, mtu 1410, local 10.128.0.5, vni 1",
		"offload:   tx checksum on (auto: vxlan-exempt)",
		"sync:      in sync; 1/2 peers programmed; kernel 1 neighbours, 1 fdb, 1 routes; last full pass 3s ago",
		"iptables:  rules in place, checked 1s ago, 0 repairs",
		"10.244.37.0/24  203.0.113.9   56:b3:03:00:ef:bd  203.0.113.9   programmed",
		"failing: route: no buffer space",
	)
}

// checkPrinted prints doc as at now (50 peers at the most) and fails for
// each of wants the output lacks.
func checkPrinted(t *testing.T, doc statusdoc.Doc, now time.Time, wants ...string) {
	t.Helper()
	var out bytes.Buffer
	printStatus(&out, doc, 50, now)
	for _, want := range wants {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestPrintStatusExpiredLease: an expired lease (fencing) is called so.
func TestPrintStatusExpiredLease(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	doc := sampleStatus(now)
	doc.Ready = false
	doc.Lease.Expiration, doc.Lease.Expired = now.Add(-time.Minute), true
	var out bytes.Buffer
	printStatus(&out, doc, 50, now)
	if !strings.Contains(out.String(), "10.244.3.0/24, expires 2026-11-22T11:59:00Z (in -1m0s); EXPIRED") || !strings.Contains(out.String(), "EXPIRED without a renewal") {
		t.Errorf("status output does not call the lease expired:\n%s", out.String())
	}
}

func TestStatusMainFetchesAndLimitsPeers(t *testing.T) {
	now := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(sampleStatus(now))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	var out, errOut bytes.Buffer
	if code := statusMain([]string{"--metrics-addr=" + addr, "--peers=1"}, &out, &errOut, func() time.Time { return now }); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "... 1 more (--peers=-1 lists all)") {
		t.Errorf("peer list not limited:\n%s", out.String())
	}
	out.Reset()
	if code := statusMain([]string{"--metrics-addr=" + addr, "--json"}, &out, &errOut, time.Now); code != 0 {
		t.Fatalf("--json exit %d", code)
	}
	var doc statusdoc.Doc
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || doc.Lease.Subnet != "10.244.3.0/24" {
		t.Fatalf("--json output not the document: %v %s", err, out.String())
	}
}

func TestStatusMainNamesTheAddressWhenDown(t *testing.T) {
	var out, errOut bytes.Buffer
	code := statusMain([]string{"--metrics-addr=127.0.0.1:1"}, &out, &errOut, time.Now)
	if code != 1 || !strings.Contains(errOut.String(), "--metrics-addr=127.0.0.1:1") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}

// TestPrintStatusDualStack: both families' addresses, subnets, devices,
// syncs and peers are printed.
func TestPrintStatusDualStack(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	doc := sampleStatus(now)
	doc.Underlay.Bind6, doc.Underlay.Advertise6 = "2001:db8:1::5", "2001:db8:1::5"
	doc.Lease.IPv6Subnet = "fd00:10:244:3::/64"
	doc.DeviceV6 = &statusdoc.Device{Name: "flannel-v6.1", MAC: "42:07:40:10:9d:dd", MTU: 1390, Local: "2001:db8:1::5", VNI: 1}
	doc.SyncV6 = &statusdoc.Sync{Synced: true, InSync: true, LastFullPass: now.Add(-2 * time.Second), LastPassDuration: "1ms",
		Counts: backend.StatusCounts{Peers: 1, PeersProgrammed: 1, Kernel: backend.EntryCounts{Neighbours: 1, FDB: 1, Routes: 1}},
		Peers:  []statusdoc.Peer{{Subnet: "fd00:10:244:37::/64", PublicIP: "2001:db8:1::9", MAC: "56:b3:03:00:ef:b6", Dst: "2001:db8:1::9", Programmed: true}}}
	checkPrinted(t, doc, now,
		"underlay:     ens4, bind 10.128.0.5, advertise 203.0.113.7, bind 2001:db8:1::5, advertise 2001:db8:1::5",
		"lease:        10.244.3.0/24 and fd00:10:244:3::/64, expires",
		"device:       flannel-v6.1, mac 42:07:40:10:9d:dd, mtu 1390, local 2001:db8:1::5, vni 1",
		"sync (IPv6):  in sync; 1/1 peers programmed; kernel 1 neighbours, 1 fdb, 1 routes",
		"fd00:10:244:37::/64  2001:db8:1::9  56:b3:03:00:ef:b6  2001:db8:1::9  programmed",
	)
}
