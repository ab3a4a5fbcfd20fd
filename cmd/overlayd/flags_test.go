package main

import (
	"io"
	"strings"
	"testing"
	"time"

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
		{env: map[string]string{"FLANNELD_IP_MASQ": "maybe"}, want: `FLANNELD_IP_MASQ="maybe" (for --ip-masq)`},
		{env: map[string]string{"FLANNELD_IPTABLES_RESYNC": "soon"}, want: `FLANNELD_IPTABLES_RESYNC="soon"`},
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
