package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// specConflist is 10-flannel.conflist as the flannel compatibility contract
// (docs/compatibility.md, "Kubernetes mode") gives it, byte for byte.
const specConflist = `{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}},{"type":"portmap","capabilities":{"portMappings":true}}]}`

const conflistPath = "/etc/cni/net.d/10-flannel.conflist"

// The subset of the Kubernetes objects the tests look at.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data                         map[string]string `yaml:"data"`
	AutomountServiceAccountToken *bool             `yaml:"automountServiceAccountToken"`
	Spec                         struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	HostNetwork        bool         `yaml:"hostNetwork"`
	DNSPolicy          string       `yaml:"dnsPolicy"`
	PriorityClassName  string       `yaml:"priorityClassName"`
	ServiceAccountName string       `yaml:"serviceAccountName"`
	Tolerations        []toleration `yaml:"tolerations"`
	InitContainers     []container  `yaml:"initContainers"`
	Containers         []container  `yaml:"containers"`
	Volumes            []volume     `yaml:"volumes"`
}

type toleration struct {
	Key      string `yaml:"key"`
	Operator string `yaml:"operator"`
	Effect   string `yaml:"effect"`
}

type container struct {
	Name            string           `yaml:"name"`
	Image           string           `yaml:"image"`
	Command         []string         `yaml:"command"`
	Args            []string         `yaml:"args"`
	Env             []envVar         `yaml:"env"`
	SecurityContext *securityContext `yaml:"securityContext"`
	LivenessProbe   *probe           `yaml:"livenessProbe"`
	ReadinessProbe  *probe           `yaml:"readinessProbe"`
	VolumeMounts    []volumeMount    `yaml:"volumeMounts"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type securityContext struct {
	Privileged   *bool `yaml:"privileged"`
	Capabilities struct {
		Add  []string `yaml:"add"`
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
}

type probe struct {
	HTTPGet *struct {
		Host string `yaml:"host"`
		Path string `yaml:"path"`
		Port any    `yaml:"port"` // a number or a port name
	} `yaml:"httpGet"`
}

type volumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

type volume struct {
	Name     string `yaml:"name"`
	HostPath *struct {
		Path string `yaml:"path"`
		Type string `yaml:"type"`
	} `yaml:"hostPath"`
	Secret *struct {
		SecretName string `yaml:"secretName"`
		Optional   *bool  `yaml:"optional"`
		Items      []struct {
			Key  string `yaml:"key"`
			Path string `yaml:"path"`
		} `yaml:"items"`
	} `yaml:"secret"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
}

// manifest is the parsed deploy/kubernetes/overlayd.yaml.
type manifest struct {
	objects []k8sObject
}

func loadManifest(t *testing.T) manifest {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(readFile(t, manifestPath))))
	var m manifest
	for {
		var obj k8sObject
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", manifestPath, len(m.objects)+1, err)
		}
		if obj.Kind == "" {
			t.Fatalf("%s: document %d has no kind", manifestPath, len(m.objects)+1)
		}
		m.objects = append(m.objects, obj)
	}
	return m
}

// only returns the single object of kind, failing when there is not one.
func (m manifest) only(t *testing.T, kind string) k8sObject {
	t.Helper()
	return onlyOfKind(t, manifestPath, m.objects, kind)
}

func (m manifest) pod(t *testing.T) podSpec {
	t.Helper()
	return m.only(t, "DaemonSet").Spec.Template.Spec
}

// agent is the overlayd container of the DaemonSet.
func (p podSpec) agent(t *testing.T) container {
	t.Helper()
	for _, c := range p.Containers {
		if c.Name == "overlayd" {
			return c
		}
	}
	t.Fatal("the DaemonSet has no container named overlayd")
	return container{}
}

func (o k8sObject) kind() string { return o.Kind }

// onlyOfKind returns the single object of kind among objs (read from
// path), failing when there is not exactly one.
func onlyOfKind[T interface{ kind() string }](t *testing.T, path string, objs []T, kind string) T {
	t.Helper()
	var found []T
	for _, o := range objs {
		if o.kind() == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d objects of kind %s, want 1", path, len(found), kind)
	}
	return found[0]
}

func (p podSpec) allContainers() []container {
	return append(slices.Clone(p.InitContainers), p.Containers...)
}

func (p podSpec) volume(name string) (volume, bool) {
	for _, v := range p.Volumes {
		if v.Name == name {
			return v, true
		}
	}
	return volume{}, false
}

// parseArgs splits --name=value / --name value / --bool into a map.
func parseArgs(t *testing.T, args []string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			t.Fatalf("%s: argument %q is not a --flag", manifestPath, a)
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !hasValue && !isBoolFlag(name) && i+1 < len(args) {
			i++
			value = args[i]
		}
		if _, dup := got[name]; dup {
			t.Errorf("%s: --%s given twice", manifestPath, name)
		}
		got[name] = value
	}
	return got
}

func isBoolFlag(name string) bool {
	for _, f := range daemonFlags {
		if f.name == name {
			return f.def == "true" || f.def == "false"
		}
	}
	return false
}

func TestManifestKindsAndNamespace(t *testing.T) {
	m := loadManifest(t)
	var kinds []string
	for _, o := range m.objects {
		kinds = append(kinds, o.Kind)
	}
	for _, want := range []string{"Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"} {
		if !slices.Contains(kinds, want) {
			t.Errorf("%s: no %s (kinds: %v)", manifestPath, want, kinds)
		}
	}
	ns := m.only(t, "Namespace")
	if ns.Metadata.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace %s: hostNetwork, hostPath and NET_ADMIN need pod-security.kubernetes.io/enforce=privileged", ns.Metadata.Name)
	}
	for _, o := range m.objects {
		if o.Kind != "Namespace" && o.Metadata.Namespace != ns.Metadata.Name {
			t.Errorf("%s %s is in namespace %q, want %q", o.Kind, o.Metadata.Name, o.Metadata.Namespace, ns.Metadata.Name)
		}
	}
	sa := m.only(t, "ServiceAccount")
	pod := m.pod(t)
	if pod.ServiceAccountName != sa.Metadata.Name {
		t.Errorf("DaemonSet runs as service account %q, the manifest creates %q", pod.ServiceAccountName, sa.Metadata.Name)
	}
}

func TestManifestPodSpec(t *testing.T) {
	pod := loadManifest(t).pod(t)
	if !pod.HostNetwork {
		t.Error("hostNetwork must be true: overlayd programs the node's network namespace")
	}
	if pod.DNSPolicy != "Default" {
		t.Errorf("dnsPolicy %q: etcd names must resolve without cluster DNS, which needs the overlay (want Default)", pod.DNSPolicy)
	}
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q, want system-node-critical", pod.PriorityClassName)
	}
	if !slices.Contains(pod.Tolerations, toleration{Operator: "Exists", Effect: "NoSchedule"}) {
		t.Errorf("tolerations %+v lack {operator: Exists, effect: NoSchedule}", pod.Tolerations)
	}
	sc := pod.agent(t).SecurityContext
	if sc == nil {
		t.Fatal("the overlayd container has no securityContext")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("the overlayd container must not be privileged")
	}
	if add := slices.Sorted(slices.Values(sc.Capabilities.Add)); !slices.Equal(add, []string{"NET_ADMIN", "NET_RAW"}) {
		t.Errorf("capabilities.add %v, want exactly NET_ADMIN and NET_RAW", add)
	}
}

func TestManifestHostMounts(t *testing.T) {
	pod := loadManifest(t).pod(t)
	agent := pod.agent(t)
	tests := []struct {
		hostPath, hostPathType string
		inAgent                bool // overlayd itself needs it (not only an init container)
	}{
		{"/run/flannel", "DirectoryOrCreate", true},
		{"/etc/cni/net.d", "DirectoryOrCreate", false},
		{"/opt/cni/bin", "DirectoryOrCreate", false},
		{"/run/xtables.lock", "FileOrCreate", true},
	}
	for _, tc := range tests {
		t.Run(tc.hostPath, func(t *testing.T) {
			var vol volume
			for _, v := range pod.Volumes {
				if v.HostPath != nil && v.HostPath.Path == tc.hostPath {
					vol = v
				}
			}
			if vol.HostPath == nil {
				t.Fatalf("no hostPath volume for %s", tc.hostPath)
			}
			if vol.HostPath.Type != tc.hostPathType {
				t.Errorf("hostPath %s type %q, want %s", tc.hostPath, vol.HostPath.Type, tc.hostPathType)
			}
			mounted := func(c container) bool {
				return slices.ContainsFunc(c.VolumeMounts, func(m volumeMount) bool {
					return m.Name == vol.Name && m.MountPath == tc.hostPath && !m.ReadOnly
				})
			}
			if tc.inAgent && !mounted(agent) {
				t.Errorf("the overlayd container does not mount %s read-write at the same path", tc.hostPath)
			}
			if !slices.ContainsFunc(pod.allContainers(), mounted) {
				t.Errorf("no container mounts %s read-write at the same path", tc.hostPath)
			}
		})
	}
}

func TestManifestArgsAndEnvUseRealFlags(t *testing.T) {
	pod := loadManifest(t).pod(t)
	agent := pod.agent(t)
	args := parseArgs(t, agent.Args)
	for name := range args {
		if !isDaemonFlag(name) {
			t.Errorf("argument --%s is not an overlayd flag (cmd/overlayd/flags.go)", name)
		}
	}
	for _, e := range agent.Env {
		if !strings.HasPrefix(e.Name, "FLANNELD_") {
			continue
		}
		name, ok := flagFromEnv(e.Name)
		if !ok {
			t.Errorf("env %s matches no overlayd flag", e.Name)
			continue
		}
		if _, both := args[name]; both {
			t.Errorf("--%s is both an argument and env %s: the argument silently wins", name, e.Name)
		}
	}
	// The command must hand the args to overlayd.
	cmd := strings.Join(agent.Command, " ")
	if len(agent.Command) > 0 && !(strings.Contains(cmd, "exec "+imageEntrypoint+" \"$@\"") || agent.Command[0] == imageEntrypoint) {
		t.Errorf("command %q does not run %s (which runs overlayd) with the args", agent.Command, imageEntrypoint)
	}
}

func TestManifestProbesMatchHealthzFlags(t *testing.T) {
	agent := loadManifest(t).pod(t).agent(t)
	args := parseArgs(t, agent.Args)
	port, ip := args["healthz-port"], args["healthz-ip"]
	if port == "" || port == "0" {
		t.Fatalf("--healthz-port is %q: the probes need the health listener", port)
	}
	probes := []struct {
		name, path string
		p          *probe
	}{
		{"livenessProbe", "/healthz", agent.LivenessProbe},
		{"readinessProbe", "/readyz", agent.ReadinessProbe},
	}
	for _, pr := range probes {
		if pr.p == nil || pr.p.HTTPGet == nil {
			t.Errorf("%s: missing or not httpGet", pr.name)
			continue
		}
		g := pr.p.HTTPGet
		if g.Path != pr.path {
			t.Errorf("%s path %q, want %s", pr.name, g.Path, pr.path)
		}
		if got := fmt.Sprint(g.Port); got != port {
			t.Errorf("%s port %s, --healthz-port %s", pr.name, got, port)
		}
		// On hostNetwork the kubelet probes the node IP unless host is set;
		// a loopback listener needs host 127.0.0.1.
		switch {
		case ip == "127.0.0.1" && g.Host != "127.0.0.1":
			t.Errorf("%s host %q: --healthz-ip is 127.0.0.1, so the probe must set host: 127.0.0.1", pr.name, g.Host)
		case ip != "127.0.0.1" && ip != "" && ip != "0.0.0.0" && g.Host != ip:
			t.Errorf("%s host %q does not reach --healthz-ip %s", pr.name, g.Host, ip)
		}
	}
}

func TestManifestEtcdFromSecret(t *testing.T) {
	pod := loadManifest(t).pod(t)
	agent := pod.agent(t)
	var endpoints *envVar
	for i, e := range agent.Env {
		if e.Name == "FLANNELD_ETCD_ENDPOINTS" {
			endpoints = &agent.Env[i]
		}
	}
	if endpoints == nil || endpoints.ValueFrom == nil || endpoints.ValueFrom.SecretKeyRef == nil {
		t.Fatal("FLANNELD_ETCD_ENDPOINTS must come from a Secret (valueFrom.secretKeyRef)")
	}
	// TLS is optional: no --etcd-*file argument is hard-coded; the files
	// come from an optional Secret and are used only when present.
	args := parseArgs(t, agent.Args)
	for _, flag := range []string{"etcd-cafile", "etcd-certfile", "etcd-keyfile"} {
		if file, ok := args[flag]; ok {
			t.Errorf("--%s=%s is hard-coded: etcd without TLS would fail", flag, file)
		}
	}
	script := strings.Join(agent.Command, " ")
	for _, env := range []string{"FLANNELD_ETCD_CAFILE", "FLANNELD_ETCD_CERTFILE", "FLANNELD_ETCD_KEYFILE"} {
		if !strings.Contains(script, "export "+env+"=") {
			t.Errorf("the agent's command does not set %s when its file is present", env)
		}
	}
	var tlsVolume *volume
	for i, v := range pod.Volumes {
		if v.Secret != nil && v.Secret.SecretName != endpoints.ValueFrom.SecretKeyRef.Name {
			tlsVolume = &pod.Volumes[i]
		}
	}
	if tlsVolume == nil || tlsVolume.Secret.Optional == nil || !*tlsVolume.Secret.Optional {
		t.Fatal("the etcd TLS files must come from an optional Secret volume")
	}
	for _, file := range []string{"ca.crt", "tls.crt", "tls.key"} {
		if !servedBySecret(pod, agent, tlsVolume.Secret.SecretName, "/etc/overlayd/etcd/"+file) || !strings.Contains(script, "/"+file) {
			t.Errorf("%s is not both mounted from Secret %s and used by the command", file, tlsVolume.Secret.SecretName)
		}
	}
}

// servedBySecret reports whether file lies in a mount of a volume of the
// named Secret that projects it (or projects every key).
func servedBySecret(pod podSpec, c container, secretName, file string) bool {
	for _, m := range c.VolumeMounts {
		v, ok := pod.volume(m.Name)
		if !ok || v.Secret == nil || v.Secret.SecretName != secretName || path.Dir(file) != path.Clean(m.MountPath) {
			continue
		}
		if len(v.Secret.Items) == 0 {
			return true
		}
		for _, it := range v.Secret.Items {
			if it.Path == path.Base(file) {
				return true
			}
		}
	}
	return false
}

// conflistInstaller is the init container of p whose command writes
// conflistPath, that command line, and the key of ConfigMap cm the command
// copies from where cm is mounted in it ("" when none).
func (p podSpec) conflistInstaller(t *testing.T, cm k8sObject) (installer container, script, key string) {
	t.Helper()
	for _, c := range p.InitContainers {
		if s := strings.Join(append(c.Command, c.Args...), " "); strings.Contains(s, conflistPath) {
			script, installer = s, c
		}
	}
	if script == "" {
		t.Fatalf("no init container writes %s", conflistPath)
	}
	for _, mnt := range installer.VolumeMounts {
		v, ok := p.volume(mnt.Name)
		if !ok || v.ConfigMap == nil || v.ConfigMap.Name != cm.Metadata.Name {
			continue
		}
		for k := range cm.Data {
			if strings.Contains(script, path.Join(mnt.MountPath, k)+" ") {
				key = k
			}
		}
	}
	return installer, script, key
}

func TestManifestInstallsSpecConflist(t *testing.T) {
	m := loadManifest(t)
	cm := m.only(t, "ConfigMap")
	pod := m.pod(t)
	installer, script, sourceKey := pod.conflistInstaller(t, cm)
	if sourceKey == "" {
		t.Fatalf("init container %s copies no key of ConfigMap %s (script: %s)", installer.Name, cm.Metadata.Name, script)
	}
	got := cm.Data[sourceKey]
	if strings.TrimSpace(got) != specConflist {
		t.Errorf("ConfigMap %s key %s:\n got %s\nwant %s (docs/compatibility.md, Kubernetes mode)", cm.Metadata.Name, sourceKey, got, specConflist)
	}
	var gotJSON, wantJSON any
	if err := json.Unmarshal([]byte(got), &gotJSON); err != nil {
		t.Fatalf("conflist is not JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(specConflist), &wantJSON); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotJSON, wantJSON) {
		t.Errorf("conflist differs from docs/compatibility.md as JSON")
	}
}
