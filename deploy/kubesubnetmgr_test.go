package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/overlayd/overlayd/subnet"
)

// ksmManifestPath is the DaemonSet of --kube-subnet-mgr mode.
const ksmManifestPath = "kubernetes/overlayd-kube-subnet-mgr.yaml"

// ksmRBAC is exactly what kube-flannel's ClusterRole grants (issue 9):
// resource → verbs, all in the core API group.
var ksmRBAC = map[string][]string{
	"pods":         {"get"},
	"nodes":        {"get", "list", "watch"},
	"nodes/status": {"patch"},
}

// ksmObject is the subset of the manifest's objects these tests read: the
// fields of k8sObject plus RBAC and the env sources of the DaemonSet.
type ksmObject struct {
	k8sObject `yaml:",inline"`
	Rules     []struct {
		APIGroups []string `yaml:"apiGroups"`
		Resources []string `yaml:"resources"`
		Verbs     []string `yaml:"verbs"`
	} `yaml:"rules"`
	RoleRef struct {
		APIGroup string `yaml:"apiGroup"`
		Kind     string `yaml:"kind"`
		Name     string `yaml:"name"`
	} `yaml:"roleRef"`
	Subjects []struct {
		Kind      string `yaml:"kind"`
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"subjects"`
	Env struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Name string `yaml:"name"`
						Env  []struct {
							Name      string `yaml:"name"`
							ValueFrom *struct {
								FieldRef *struct {
									FieldPath string `yaml:"fieldPath"`
								} `yaml:"fieldRef"`
							} `yaml:"valueFrom"`
						} `yaml:"env"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	} `yaml:"-"`
}

type ksmManifest []ksmObject

func loadKSMManifest(t *testing.T) ksmManifest {
	t.Helper()
	data := readFile(t, ksmManifestPath)
	dec := yaml.NewDecoder(bytes.NewReader([]byte(data)))
	var m ksmManifest
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", ksmManifestPath, len(m)+1, err)
		}
		var obj ksmObject
		if err := node.Decode(&obj); err != nil {
			t.Fatalf("%s: document %d: %v", ksmManifestPath, len(m)+1, err)
		}
		if err := node.Decode(&obj.Env); err != nil {
			t.Fatalf("%s: document %d: %v", ksmManifestPath, len(m)+1, err)
		}
		if obj.Kind == "" {
			t.Fatalf("%s: document %d has no kind", ksmManifestPath, len(m)+1)
		}
		m = append(m, obj)
	}
	return m
}

func (m ksmManifest) only(t *testing.T, kind string) ksmObject {
	t.Helper()
	return onlyOfKind(t, ksmManifestPath, m, kind)
}

func (m ksmManifest) pod(t *testing.T) podSpec {
	t.Helper()
	return m.only(t, "DaemonSet").Spec.Template.Spec
}

func (m ksmManifest) agent(t *testing.T) container {
	t.Helper()
	return m.pod(t).agent(t)
}

func TestKSMManifestObjects(t *testing.T) {
	m := loadKSMManifest(t)
	ns := m.only(t, "Namespace")
	if ns.Metadata.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace %s: hostNetwork, hostPath and NET_ADMIN need pod-security.kubernetes.io/enforce=privileged", ns.Metadata.Name)
	}
	clusterScoped := map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true}
	for _, o := range m {
		if !clusterScoped[o.Kind] && o.Metadata.Namespace != ns.Metadata.Name {
			t.Errorf("%s %s is in namespace %q, want %q", o.Kind, o.Metadata.Name, o.Metadata.Namespace, ns.Metadata.Name)
		}
	}
	sa := m.only(t, "ServiceAccount")
	if sa.AutomountServiceAccountToken != nil && !*sa.AutomountServiceAccountToken {
		t.Error("the ServiceAccount must mount its token: overlayd talks to the API server")
	}
	pod := m.pod(t)
	if pod.ServiceAccountName != sa.Metadata.Name {
		t.Errorf("DaemonSet runs as %q, the manifest creates service account %q", pod.ServiceAccountName, sa.Metadata.Name)
	}
	role, binding := m.only(t, "ClusterRole"), m.only(t, "ClusterRoleBinding")
	if binding.RoleRef.Kind != "ClusterRole" || binding.RoleRef.Name != role.Metadata.Name || binding.RoleRef.APIGroup != "rbac.authorization.k8s.io" {
		t.Errorf("ClusterRoleBinding roleRef %+v does not name ClusterRole %s", binding.RoleRef, role.Metadata.Name)
	}
	if len(binding.Subjects) != 1 || binding.Subjects[0].Kind != "ServiceAccount" ||
		binding.Subjects[0].Name != sa.Metadata.Name || binding.Subjects[0].Namespace != ns.Metadata.Name {
		t.Errorf("ClusterRoleBinding subjects %+v, want only ServiceAccount %s/%s", binding.Subjects, ns.Metadata.Name, sa.Metadata.Name)
	}
}

func TestKSMManifestRBACIsKubeFlannels(t *testing.T) {
	role := loadKSMManifest(t).only(t, "ClusterRole")
	got := map[string][]string{}
	for _, r := range role.Rules {
		if !slices.Equal(r.APIGroups, []string{""}) {
			t.Errorf("rule %+v: only the core API group is needed", r)
			continue
		}
		for _, res := range r.Resources {
			got[res] = slices.Sorted(slices.Values(append(got[res], r.Verbs...)))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(ksmRBAC) {
		t.Errorf("ClusterRole grants %v, want exactly %v (kube-flannel's)", got, ksmRBAC)
	}
}

func TestKSMManifestAgent(t *testing.T) {
	m := loadKSMManifest(t)
	pod, agent := m.pod(t), m.agent(t)
	if !pod.HostNetwork || pod.PriorityClassName != "system-node-critical" {
		t.Errorf("hostNetwork %v priorityClassName %q: want true and system-node-critical", pod.HostNetwork, pod.PriorityClassName)
	}
	if !slices.Contains(pod.Tolerations, toleration{Operator: "Exists", Effect: "NoSchedule"}) {
		t.Errorf("tolerations %+v lack {operator: Exists, effect: NoSchedule}", pod.Tolerations)
	}
	sc := agent.SecurityContext
	if sc == nil || (sc.Privileged != nil && *sc.Privileged) {
		t.Fatal("the overlayd container needs a securityContext and must not be privileged")
	}
	if add := slices.Sorted(slices.Values(sc.Capabilities.Add)); !slices.Equal(add, []string{"NET_ADMIN", "NET_RAW"}) {
		t.Errorf("capabilities.add %v, want exactly NET_ADMIN and NET_RAW", add)
	}
	if !slices.Equal(agent.Command, []string{imageEntrypoint}) {
		t.Errorf("command %q, want the image's entrypoint %s", agent.Command, imageEntrypoint)
	}
	args := parseArgs(t, agent.Args)
	for name := range args {
		if !isDaemonFlag(name) {
			t.Errorf("argument --%s is not an overlayd flag (cmd/overlayd/flags.go)", name)
		}
	}
	if _, ok := args["kube-subnet-mgr"]; !ok {
		t.Error("args lack --kube-subnet-mgr")
	}
	for _, etcd := range []string{"etcd-endpoints", "etcd-cafile", "etcd-certfile", "etcd-keyfile"} {
		if _, ok := args[etcd]; ok {
			t.Errorf("--%s in kube subnet manager mode: no etcd is used", etcd)
		}
	}
}

func TestKSMManifestNodeNameFromDownwardAPI(t *testing.T) {
	m := loadKSMManifest(t)
	want := map[string]string{"NODE_NAME": "spec.nodeName", "POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
	ds := m.only(t, "DaemonSet")
	got := map[string]string{}
	for _, c := range ds.Env.Spec.Template.Spec.Containers {
		if c.Name != "overlayd" {
			continue
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				got[e.Name] = e.ValueFrom.FieldRef.FieldPath
			}
		}
	}
	for name, field := range want {
		if got[name] != field {
			t.Errorf("env %s from fieldRef %q, want %s", name, got[name], field)
		}
	}
}

// TestKSMManifestNetConf: the net-conf.json the agent reads at
// --net-config-path comes from the ConfigMap and is a valid config.
func TestKSMManifestNetConf(t *testing.T) {
	m := loadKSMManifest(t)
	pod, agent := m.pod(t), m.agent(t)
	cm := m.only(t, "ConfigMap")
	netConf := parseArgs(t, agent.Args)["net-config-path"]
	if netConf == "" {
		netConf = "/etc/kube-flannel/net-conf.json" // the flag's default
	}
	key := ""
	for _, mnt := range agent.VolumeMounts {
		v, ok := pod.volume(mnt.Name)
		if ok && v.ConfigMap != nil && v.ConfigMap.Name == cm.Metadata.Name && path.Dir(netConf) == path.Clean(mnt.MountPath) {
			key = path.Base(netConf)
		}
	}
	if key == "" {
		t.Fatalf("--net-config-path %s is not in a mount of ConfigMap %s", netConf, cm.Metadata.Name)
	}
	data, ok := cm.Data[key]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cm.Metadata.Name, key)
	}
	cfg, err := subnet.ParseConfig([]byte(data))
	if err != nil {
		t.Fatalf("ConfigMap %s key %s: %v", cm.Metadata.Name, key, err)
	}
	if cfg.Network.String() != "10.244.0.0/16" || cfg.BackendType != subnet.BackendVXLAN {
		t.Errorf("net-conf.json Network %s backend %s, want kube-flannel's 10.244.0.0/16 and vxlan", cfg.Network, cfg.BackendType)
	}
}

func TestKSMManifestHostMountsAndConflist(t *testing.T) {
	m := loadKSMManifest(t)
	pod, agent := m.pod(t), m.agent(t)
	for _, hp := range []struct {
		path    string
		inAgent bool
	}{{"/run/flannel", true}, {"/run/xtables.lock", true}, {"/etc/cni/net.d", false}, {"/opt/cni/bin", false}} {
		var name string
		for _, v := range pod.Volumes {
			if v.HostPath != nil && v.HostPath.Path == hp.path {
				name = v.Name
			}
		}
		mounted := func(c container) bool {
			return slices.ContainsFunc(c.VolumeMounts, func(mnt volumeMount) bool {
				return mnt.Name == name && mnt.MountPath == hp.path && !mnt.ReadOnly
			})
		}
		switch {
		case name == "":
			t.Errorf("no hostPath volume for %s", hp.path)
		case hp.inAgent && !mounted(agent):
			t.Errorf("the overlayd container does not mount %s read-write", hp.path)
		case !slices.ContainsFunc(append(slices.Clone(pod.InitContainers), pod.Containers...), mounted):
			t.Errorf("no container mounts %s read-write", hp.path)
		}
	}
	cm := m.only(t, "ConfigMap")
	installer, _, copied := pod.conflistInstaller(t, cm.k8sObject)
	if got := strings.TrimSpace(cm.Data[copied]); copied == "" || got != specConflist {
		t.Errorf("init container %s copies key %q = %s, want the conflist of docs/compatibility.md %s", installer.Name, copied, got, specConflist)
	}
}

func TestKSMManifestProbesMatchHealthzFlags(t *testing.T) {
	agent := loadKSMManifest(t).agent(t)
	args := parseArgs(t, agent.Args)
	port, ip := args["healthz-port"], args["healthz-ip"]
	if port == "" || port == "0" {
		t.Fatalf("--healthz-port is %q: the probes need the health listener", port)
	}
	for _, pr := range []struct {
		name, path string
		p          *probe
	}{{"livenessProbe", "/healthz", agent.LivenessProbe}, {"readinessProbe", "/readyz", agent.ReadinessProbe}} {
		if pr.p == nil || pr.p.HTTPGet == nil {
			t.Errorf("%s: missing or not httpGet", pr.name)
			continue
		}
		g := pr.p.HTTPGet
		if g.Path != pr.path || fmt.Sprint(g.Port) != port || (ip != "" && ip != "0.0.0.0" && g.Host != ip) {
			t.Errorf("%s %+v does not reach --healthz-ip %s --healthz-port %s at %s", pr.name, *g, ip, port, pr.path)
		}
	}
}
