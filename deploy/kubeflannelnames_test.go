package deploy

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestKSMManifestUsesKubeFlannelNames: the objects carry kube-flannel's
// names and labels, so the manifest applies over a kube-flannel install
// (its ConfigMap reused as it is, its DaemonSet rolled over) and
// `kubectl -l app=flannel` finds overlayd's pods.
func TestKSMManifestUsesKubeFlannelNames(t *testing.T) {
	m := loadKSMManifest(t)
	for kind, name := range map[string]string{
		"ServiceAccount": "flannel", "ClusterRole": "flannel", "ClusterRoleBinding": "flannel",
		"ConfigMap": "kube-flannel-cfg", "DaemonSet": "kube-flannel-ds", "Namespace": "kube-flannel",
	} {
		if got := m.only(t, kind).Metadata.Name; got != name {
			t.Errorf("%s is named %q, want kube-flannel's %q", kind, got, name)
		}
	}
	cm := m.only(t, "ConfigMap")
	for _, key := range []string{"cni-conf.json", "net-conf.json"} {
		if !json.Valid([]byte(cm.Data[key])) {
			t.Errorf("ConfigMap kube-flannel-cfg key %s is missing or not JSON: %q", key, cm.Data[key])
		}
	}
	var ds struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Template struct {
				Metadata struct {
					Labels map[string]string `yaml:"labels"`
				} `yaml:"metadata"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	decodeDaemonSet(t, &ds)
	want := map[string]string{"app": "flannel", "k8s-app": "flannel"}
	if !maps.Equal(ds.Spec.Selector.MatchLabels, want) {
		t.Errorf("DaemonSet selector %v, want kube-flannel's %v (immutable: it must match to apply in place)", ds.Spec.Selector.MatchLabels, want)
	}
	for _, labels := range []map[string]string{ds.Metadata.Labels, ds.Spec.Template.Metadata.Labels} {
		for k, v := range want {
			if labels[k] != v {
				t.Errorf("labels %v lack %s=%s", labels, k, v)
			}
		}
	}
}

func decodeDaemonSet(t *testing.T, out any) {
	t.Helper()
	for _, doc := range strings.Split(readFile(t, ksmManifestPath), "\n---\n") {
		var head struct {
			Kind string `yaml:"kind"`
		}
		if yaml.Unmarshal([]byte(doc), &head) == nil && head.Kind == "DaemonSet" {
			if err := yaml.Unmarshal([]byte(doc), out); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("%s has no DaemonSet", ksmManifestPath)
}

// TestKSMManifestInstallsOwnCNIPlugin: the flannel CNI plugin is overlayd
// from the agent's own image, installed as /opt/cni/bin/flannel.
func TestKSMManifestInstallsOwnCNIPlugin(t *testing.T) {
	m := loadKSMManifest(t)
	pod, agent := m.pod(t), m.agent(t)
	var found bool
	for _, c := range pod.InitContainers {
		script := strings.Join(append(c.Command, c.Args...), " ")
		if !strings.Contains(script, "/opt/cni/bin/flannel") {
			continue
		}
		found = true
		if c.Image != agent.Image {
			t.Errorf("init container %s installs the plugin from %s, want the agent's image %s", c.Name, c.Image, agent.Image)
		}
		if !strings.Contains(script, "/usr/local/bin/overlayd") {
			t.Errorf("init container %s does not copy /usr/local/bin/overlayd: %s", c.Name, script)
		}
	}
	if !found {
		t.Fatal("no init container installs /opt/cni/bin/flannel")
	}
	if strings.Contains(readFile(t, ksmManifestPath), "flannel-cni-plugin") {
		t.Error("the manifest still uses flannel's CNI plugin image")
	}
}
