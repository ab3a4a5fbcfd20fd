package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Paths from this package's directory (go test runs in deploy/).
const (
	repoRoot       = ".."
	flagsGoPath    = "../cmd/overlayd/flags.go"
	unitPath       = "systemd/overlayd.service"
	envExamplePath = "systemd/overlayd.env.example"
	dockerDropIn   = "systemd/docker.service.d/overlayd.conf"
	manifestPath   = "kubernetes/overlayd.yaml"
	dockerfilePath = "../Dockerfile"
	configDocPath  = "../docs/configuration.md"
	opsDocPath     = "../docs/operations.md"
)

// daemonFlag is one overlayd flag with its default as the docs print it.
type daemonFlag struct {
	name, def string
}

// daemonFlags is the list of overlayd's flags the artefacts and docs are
// checked against. It is kept here, explicit and reviewable, rather than
// only derived from flags.go; TestDaemonFlagsMatchFlagsGo fails as soon as
// flags.go adds, removes or re-defaults a flag, so the list cannot drift.
var daemonFlags = []daemonFlag{
	{"etcd-endpoints", "http://127.0.0.1:4001,http://127.0.0.1:2379"},
	{"etcd-prefix", "/coreos.com/network"},
	{"etcd-cafile", ""},
	{"etcd-certfile", ""},
	{"etcd-keyfile", ""},
	{"etcd-username", ""},
	{"etcd-password", ""},
	{"etcd-api", "v3"},
	{"iface", ""},
	{"iface-regex", ""},
	{"iface-can-reach", ""},
	{"public-ip", ""},
	{"public-ipv6", ""},
	{"subnet-file", "/run/flannel/subnet.env"},
	{"subnet-lease-renew-margin", "60"},
	{"subnet-lease-ttl", "24h0m0s"},
	{"ip-masq", "false"},
	{"ip-masq-fully-random-disable", "false"},
	{"iptables-resync", "5"},
	{"iptables-forward-rules", "true"},
	{"healthz-ip", "0.0.0.0"},
	{"healthz-port", "0"},
	{"metrics-addr", "127.0.0.1:9473"},
	{"resync-interval", "1m0s"},
	{"vxlan-peer-filter", "false"},
	{"same-site-port", "8475"},
	{"health-port", "8476"},
	{"health-interval", "10s"},
	{"health-sample", "32"},
	{"route-mode", "auto"},
	{"tx-checksum-offload", "auto"},
	{"keep-tx-checksum-offload", "false"},
	{"log-level", "info"},
	{"log-format", "text"},
	{"v", "0"},
	{"vmodule", ""},
	{"log_backtrace_at", ""},
	{"ip-blackhole-route", "false"},
	{"set-node-network-unavailable", "true"},
	{"version", "false"},
	{"kube-subnet-mgr", "false"},
	{"kube-api-url", ""},
	{"kubeconfig-file", ""},
	{"kube-annotation-prefix", "flannel.alpha.coreos.com"},
	{"net-config-path", "/etc/kube-flannel/net-conf.json"},
}

func isDaemonFlag(name string) bool {
	return slices.ContainsFunc(daemonFlags, func(f daemonFlag) bool { return f.name == name })
}

// envName is cmd/overlayd's EnvName (package main cannot be imported).
func envName(flag string) string {
	return "FLANNELD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// flagFromEnv inverts envName; ok is false for a name no flag has.
func flagFromEnv(env string) (string, bool) {
	for _, f := range daemonFlags {
		if envName(f.name) == env {
			return f.name, true
		}
	}
	return "", false
}

// flagDefinition matches the flag definitions in flags.go, e.g.
// fs.StringVar(&r.etcdPrefix, "etcd-prefix", "/coreos.com/network", "...")
// and fs.Var(&r.ifaces, "iface", "...") (no default).
var flagDefinition = regexp.MustCompile(`fs\.(\w*)Var\(&\w+(?:\.\w+)+,\s*"([a-z0-9_-]+)",\s*("(?:[^"\\]|\\.)*"|[^,]+)\s*[,)]`)

// durationExpr matches defaults such as 60*time.Second.
var durationExpr = regexp.MustCompile(`^(\d+)\s*\*\s*time\.(Millisecond|Second|Minute|Hour)$`)

// flagsInFlagsGo returns every flag defined in flags.go with its default
// rendered as the flag package prints it ("" for fs.Var list flags).
func flagsInFlagsGo(t *testing.T) map[string]string {
	t.Helper()
	src := readFile(t, flagsGoPath)
	found := map[string]string{}
	for _, m := range flagDefinition.FindAllStringSubmatch(src, -1) {
		kind, name, expr := m[1], m[2], strings.TrimSpace(m[3])
		found[name] = renderDefault(t, name, kind, expr)
	}
	if len(found) == 0 {
		t.Fatalf("no flag definitions found in %s: has the style changed? update flagDefinition", flagsGoPath)
	}
	return found
}

func renderDefault(t *testing.T, name, kind, expr string) string {
	t.Helper()
	switch kind {
	case "":
		return "" // fs.Var: the third argument is the usage
	case "String":
		s, err := strconv.Unquote(expr)
		if err != nil {
			t.Fatalf("flags.go: --%s default %s is not a string literal", name, expr)
		}
		return s
	case "Duration":
		m := durationExpr.FindStringSubmatch(expr)
		if m == nil {
			t.Fatalf("flags.go: --%s default %s: extend durationExpr", name, expr)
		}
		n, _ := strconv.Atoi(m[1])
		unit := map[string]time.Duration{"Millisecond": time.Millisecond, "Second": time.Second,
			"Minute": time.Minute, "Hour": time.Hour}[m[2]]
		return (time.Duration(n) * unit).String()
	default: // Int, Bool, ...: the literal as written
		return expr
	}
}

func TestDaemonFlagsMatchFlagsGo(t *testing.T) {
	inSource := flagsInFlagsGo(t)
	for _, f := range daemonFlags {
		def, ok := inSource[f.name]
		switch {
		case !ok:
			t.Errorf("--%s is in daemonFlags but not defined in %s: remove it here and from the artefacts and docs", f.name, flagsGoPath)
		case def != f.def:
			t.Errorf("--%s: default %q in %s, %q in daemonFlags: update daemonFlags, docs/configuration.md and overlayd.env.example", f.name, def, flagsGoPath, f.def)
		}
	}
	for name := range inSource {
		if !isDaemonFlag(name) {
			t.Errorf("--%s is defined in %s but missing from daemonFlags: add it, and document it in docs/configuration.md and overlayd.env.example", name, flagsGoPath)
		}
	}
}

func TestEnvNameMatchesFlagsGo(t *testing.T) {
	// envName copies cmd/overlayd's EnvName; make sure it still reads the same.
	src := readFile(t, flagsGoPath)
	want := `return "FLANNELD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))`
	if !strings.Contains(src, want) {
		t.Errorf("%s: EnvName no longer contains %s: update envName here", flagsGoPath, want)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(data)
}
