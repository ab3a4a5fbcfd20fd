package deploy

import (
	"strings"
	"testing"
)

// tableRow returns the first Markdown table row of doc whose first cell is
// exactly "`first`".
func tableRow(doc, first string) (string, bool) {
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "| `"+first+"` |") {
			return line, true
		}
	}
	return "", false
}

func TestConfigurationDocListsEveryFlag(t *testing.T) {
	doc := readFile(t, configDocPath)
	for _, f := range daemonFlags {
		row, ok := tableRow(doc, "--"+f.name)
		if !ok {
			t.Errorf("%s: no table row for --%s", configDocPath, f.name)
			continue
		}
		if env := "`" + envName(f.name) + "`"; !strings.Contains(row, env) {
			t.Errorf("%s: the --%s row lacks %s", configDocPath, f.name, env)
		}
		if f.def != "" && !strings.Contains(row, "`"+f.def+"`") {
			t.Errorf("%s: the --%s row lacks its default `%s`", configDocPath, f.name, f.def)
		}
	}
}

func TestConfigurationDocListsEveryConfigField(t *testing.T) {
	doc := readFile(t, configDocPath)
	// docs/compatibility.md, "Network config": the network config fields and the vxlan backend options.
	fields := []string{
		"Network", "SubnetLen", "SubnetMin", "SubnetMax", "EnableIPv4", "EnableIPv6",
		"IPv6Network", "IPv6SubnetLen", "IPv6SubnetMin", "IPv6SubnetMax", "EnableNFTables", "Backend",
		"Type", "VNI", "Port", "GBP", "DirectRouting", "Learning", "MTU",
	}
	for _, f := range fields {
		if _, ok := tableRow(doc, f); !ok {
			t.Errorf("%s: no table row for the config field %s", configDocPath, f)
		}
	}
	for _, file := range []string{"/run/flannel/subnet.env", "/run/flannel/docker", "/run/xtables.lock", "10-flannel.conflist"} {
		if !strings.Contains(doc, file) {
			t.Errorf("%s does not mention %s", configDocPath, file)
		}
	}
}

func TestOperationsDocCoversTheRunbook(t *testing.T) {
	doc := readFile(t, opsDocPath)
	mustMention := []string{
		// install, upgrade, replace, roll back
		"## Install", "### systemd", "### Kubernetes DaemonSet", "### Plain container",
		"## Upgrade", "## Replace flanneld on a running node, in place", "## Roll back to flanneld",
		// troubleshooting by symptom
		"UDP 8472 blocked", "wrong advertised address behind NAT", "subnet.env` missing",
		"Routes missing after a restart", "etcd unreachable", "Out of subnets",
		// how to check
		"ip -d link show flannel.1", "ip route", "bridge fdb show dev flannel.1",
		"ip neigh show dev flannel.1", "iptables -t nat -S FLANNEL-POSTRTG", "curl -s 127.0.0.1:9473/status",
	}
	for _, s := range mustMention {
		if !strings.Contains(doc, s) {
			t.Errorf("%s does not mention %q", opsDocPath, s)
		}
	}
}
