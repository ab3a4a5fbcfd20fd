package cni

import (
	"encoding/json"
	"fmt"

	"github.com/overlayd/overlayd/subnet"
)

// DefaultDataDir is where the rendered delegate configurations are kept
// between ADD and DEL, as flannel's plugin keeps them.
const DefaultDataDir = "/var/lib/cni/flannel"

// NetConf is the plugin's network configuration (stdin). Keys other than
// these are ignored, as flannel's plugin ignores them.
type NetConf struct {
	CNIVersion string `json:"cniVersion,omitempty"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	// SubnetFile is the overlay agent's subnet file (default
	// /run/flannel/subnet.env).
	SubnetFile string `json:"subnetFile"`
	// DataDir holds the saved delegate configurations (default
	// /var/lib/cni/flannel).
	DataDir string `json:"dataDir"`
	// IPAM is the base of the delegate's ipam section: its keys are kept,
	// "type" defaults to host-local, "ranges" is replaced and "routes" is
	// extended with the overlay network.
	IPAM map[string]any `json:"ipam,omitempty"`
	// Delegate keys override the generated delegate configuration; it must
	// not set "name" or "ipam".
	Delegate      map[string]any `json:"delegate"`
	RuntimeConfig map[string]any `json:"runtimeConfig,omitempty"`
}

// ParseNetConf decodes the configuration and fills in the defaults.
func ParseNetConf(data []byte) (NetConf, error) {
	n := NetConf{SubnetFile: subnet.DefaultSubnetFile, DataDir: DefaultDataDir}
	if err := json.Unmarshal(data, &n); err != nil {
		return NetConf{}, fmt.Errorf("network configuration: %w", err)
	}
	if n.SubnetFile == "" {
		n.SubnetFile = subnet.DefaultSubnetFile
	}
	if n.DataDir == "" {
		n.DataDir = DefaultDataDir
	}
	return n, nil
}

// checkDelegate rejects delegate sections the plugin would override.
func (n NetConf) checkDelegate() error {
	if n.Delegate == nil {
		return nil
	}
	if t, ok := n.Delegate["type"]; ok {
		if _, isString := t.(string); !isString {
			return fmt.Errorf("delegate.type %v: must be a string", t)
		}
	}
	for _, key := range []string{"name", "ipam"} {
		if _, ok := n.Delegate[key]; ok {
			return fmt.Errorf("delegate.%s: must not be set, the plugin sets it", key)
		}
	}
	return nil
}
