package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/health"
	"github.com/overlayd/overlayd/offload"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseOptionsDefaults(t *testing.T) {
	o, err := parseOptions(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if got := strings.Join(o.etcdEndpoints, ","); got != "http://127.0.0.1:4001,http://127.0.0.1:2379" {
		t.Errorf("etcd endpoints %s", got)
	}
	if o.etcdPrefix != "/coreos.com/network" || o.subnetFile != "/run/flannel/subnet.env" {
		t.Errorf("prefix %s subnet file %s", o.etcdPrefix, o.subnetFile)
	}
	if o.renewMargin != 60*time.Minute || o.iptablesResync != 5*time.Second || !o.forwardRules || o.ipMasq {
		t.Errorf("renew %s resync %s forward %v masq %v", o.renewMargin, o.iptablesResync, o.forwardRules, o.ipMasq)
	}
	if o.healthzAddr != "" {
		t.Errorf("healthz should be off by default, got %s", o.healthzAddr)
	}
	if o.resyncInterval != time.Minute {
		t.Errorf("resync interval %s", o.resyncInterval)
	}
	if o.healthPort != health.DefaultPort {
		t.Errorf("--health-port default %d, want health.DefaultPort %d", o.healthPort, health.DefaultPort)
	}
}

func TestParseOptionsEnvFallback(t *testing.T) {
	o, err := parseOptions([]string{"--iface=eth1"}, env(map[string]string{
		"FLANNELD_IFACE":          "eth9", // the flag wins
		"FLANNELD_PUBLIC_IP":      "203.0.113.5",
		"FLANNELD_IP_MASQ":        "true",
		"FLANNELD_ETCD_ENDPOINTS": "http://192.0.2.1:2379",
		"FLANNELD_HEALTHZ_PORT":   "8471",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.ifaces, ",") != "eth1" {
		t.Errorf("ifaces %v: the command line must win over FLANNELD_IFACE", o.ifaces)
	}
	if o.publicIP.String() != "203.0.113.5" || !o.ipMasq || o.etcdEndpoints[0] != "http://192.0.2.1:2379" {
		t.Errorf("env not applied: %+v", o)
	}
	if o.healthzAddr != "0.0.0.0:8471" {
		t.Errorf("healthz addr %q", o.healthzAddr)
	}
}

func TestParseOptionsErrorsNameFlagAndValue(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--public-ip=nope"}, want: `--public-ip: "nope" is not an IP address`},
		{args: []string{"--public-ip=2001:db8::1"}, want: `--public-ip: "2001:db8::1" is not an IPv4 address`},
		{args: []string{"--subnet-lease-renew-margin=1440"}, want: "--subnet-lease-renew-margin: 1440 is out of range 1..1439"},
		{args: []string{"--subnet-lease-renew-margin=0"}, want: "--subnet-lease-renew-margin: 0"},
		{args: []string{"--subnet-lease-ttl=5s"}, want: "--subnet-lease-ttl: 5s is out of range 10s..24h"},
		{args: []string{"--subnet-lease-ttl=25h"}, want: "--subnet-lease-ttl: 25h0m0s is out of range"},
		{args: []string{"--etcd-endpoints=127.0.0.1:2379"}, want: `--etcd-endpoints: "127.0.0.1:2379" is not an http:// or https:// URL`},
		{args: []string{"--etcd-prefix=coreos.com"}, want: `--etcd-prefix: "coreos.com" must start with /`},
		{args: []string{"--iptables-resync=0"}, want: "--iptables-resync: 0"},
		{args: []string{"--healthz-port=70000"}, want: "--healthz-port: 70000"},
		{args: []string{"--healthz-port=1", "--healthz-ip=x"}, want: `--healthz-ip: "x"`},
		{args: []string{"--etcd-certfile=/a.pem"}, want: "--etcd-certfile"},
		{args: []string{"--etcd-api=v4"}, want: `--etcd-api: "v4" is not one of v2, v3, auto`},
		{args: []string{"--log-level=loud"}, want: `--log-level: "loud"`},
		{args: []string{"--metrics-addr=localhost"}, want: `--metrics-addr: "localhost"`},
		{args: []string{"--kube-subnet-mgr", "--kube-annotation-prefix=Not A Domain"}, want: `--kube-annotation-prefix: annotation prefix "Not A Domain"`},
		{args: []string{"stray"}, want: `unexpected argument "stray"`},
		{args: []string{"--log-format=xml"}, want: `--log-format: "xml" is not one of text, json`},
		{args: []string{"--kube-subnet-mgr", "--kube-annotation-prefix=a.b/c/d"}, want: "more than one slash"},
		{args: []string{"--tx-checksum-offload=yes"}, want: `--tx-checksum-offload: "yes" is not one of auto, on, off`},
		{args: []string{"--tx-checksum-offload=off", "--keep-tx-checksum-offload"}, want: "--keep-tx-checksum-offload contradicts --tx-checksum-offload=off"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " ")+tt.want, func(t *testing.T) {
			_, err := parseOptions(tt.args, env(tt.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("subnet-lease-renew-margin"); got != "FLANNELD_SUBNET_LEASE_RENEW_MARGIN" {
		t.Fatalf("got %s", got)
	}
}

func TestParseOptionsTxChecksumOffload(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want offload.Mode
	}{
		{want: offload.Auto}, // flanneld's data path unless the kernel is affected
		{args: []string{"--tx-checksum-offload=off"}, want: offload.Off},
		{args: []string{"--tx-checksum-offload=on"}, want: offload.On},
		{args: []string{"--keep-tx-checksum-offload"}, want: offload.On}, // the older flag is an alias
		{args: []string{"--keep-tx-checksum-offload", "--tx-checksum-offload=on"}, want: offload.On},
		{env: map[string]string{"FLANNELD_TX_CHECKSUM_OFFLOAD": "off"}, want: offload.Off},
		{env: map[string]string{"FLANNELD_KEEP_TX_CHECKSUM_OFFLOAD": "true"}, want: offload.On},
	}
	for _, tt := range tests {
		o, err := parseOptions(tt.args, env(tt.env), io.Discard)
		if err != nil || o.txChecksumOffload != tt.want {
			t.Errorf("%v %v: mode %q, err %v; want %q", tt.args, tt.env, o.txChecksumOffload, err, tt.want)
		}
	}
}

// A bad FLANNELD_* value is logged and ignored, as flanneld does: the flag
// keeps its default and the daemon starts.
func TestParseOptionsBadEnvIsAWarning(t *testing.T) {
	o, err := parseOptions(nil, env(map[string]string{
		"FLANNELD_IP_MASQ":         "maybe",
		"FLANNELD_IPTABLES_RESYNC": "soon",
	}), io.Discard)
	if err != nil {
		t.Fatalf("bad env values must not be fatal: %v", err)
	}
	if o.ipMasq || o.iptablesResync != 5*time.Second {
		t.Errorf("ip-masq %v, iptables-resync %s: want the defaults false, 5s", o.ipMasq, o.iptablesResync)
	}
	all := strings.Join(o.warnings, "\n")
	for _, want := range []string{`FLANNELD_IP_MASQ="maybe" (for --ip-masq)`, `FLANNELD_IPTABLES_RESYNC="soon"`} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
}

// flanneld's klog flags and the flags only flanneld had are accepted.
func TestParseOptionsFlanneldOnlyFlags(t *testing.T) {
	tests := []struct {
		args      []string
		env       map[string]string
		level     string
		blackhole bool
		warns     int
	}{
		{args: []string{"-v=10"}, level: "debug"},
		{args: []string{"-v", "2", "--log-level=warn"}, level: "warn"}, // an explicit level wins
		{env: map[string]string{"FLANNELD_V": "4"}, level: "debug"},
		{args: []string{"-v=0"}, level: "info"},
		{args: []string{"-vmodule=main=5", "-log_backtrace_at=main.go:1"}, level: "info", warns: 2},
		{args: []string{"--ip-blackhole-route"}, level: "info", blackhole: true},
		{args: []string{"--set-node-network-unavailable=false"}, level: "info"},
		{args: []string{"--log-format=json"}, level: "info"},
	}
	for _, tt := range tests {
		o, err := parseOptions(tt.args, env(tt.env), io.Discard)
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		if o.logLevel != tt.level || o.blackholeRoute != tt.blackhole || len(o.warnings) != tt.warns {
			t.Errorf("%v %v: level %s blackhole %v warnings %q", tt.args, tt.env, o.logLevel, o.blackholeRoute, o.warnings)
		}
	}
}

// --iface and --iface-regex take each value as given (a regex keeps its
// comma) and repeat for more, as flanneld's flags do.
func TestIfaceFlagsKeepCommas(t *testing.T) {
	o, err := parseOptions([]string{"--iface-regex=eth{1,3}", "--iface-regex=^ens", "--iface=eth0", "--iface=10.0.0.1"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.ifaceRegex, "|") != "eth{1,3}|^ens" || strings.Join(o.ifaces, "|") != "eth0|10.0.0.1" {
		t.Errorf("iface %q, iface-regex %q", o.ifaces, o.ifaceRegex)
	}
}

// TestParseOptionsLeaseTTL: a short TTL keeps a margin shorter than it
// (a third of it, with a warning) when the margin flag is not.
func TestParseOptionsLeaseTTL(t *testing.T) {
	tests := []struct {
		args        []string
		ttl, margin time.Duration
		warn        bool
	}{
		{nil, 24 * time.Hour, time.Hour, false},
		{[]string{"--subnet-lease-ttl=2h", "--subnet-lease-renew-margin=30"}, 2 * time.Hour, 30 * time.Minute, false},
		{[]string{"--subnet-lease-ttl=30s"}, 30 * time.Second, 10 * time.Second, true},
	}
	for _, tt := range tests {
		o, err := parseOptions(tt.args, env(nil), io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if o.leaseTTL != tt.ttl || o.renewMargin != tt.margin || (len(o.warnings) > 0) != tt.warn {
			t.Errorf("%v: ttl %s margin %s warnings %q; want %s %s warn %v", tt.args, o.leaseTTL, o.renewMargin, o.warnings, tt.ttl, tt.margin, tt.warn)
		}
	}
}
