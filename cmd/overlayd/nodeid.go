package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// machineIDPath is where systemd keeps the machine id.
const machineIDPath = "/etc/machine-id"

// hostNodeID is this node's identity in its lease (OverlaydNodeID): 32
// hex digits hashed from the machine id, never the id itself (systemd
// asks applications to derive their identifiers), else from the
// hostname; "" when neither is known (then leases match by PublicIP
// alone, as flanneld's do). Cloned VMs that kept one machine id share
// an identity: give them their own (systemd-machine-id-setup).
func hostNodeID(readFile func(string) ([]byte, error), hostname func() (string, error)) string {
	seed := ""
	if b, err := readFile(machineIDPath); err == nil {
		seed = strings.TrimSpace(string(b))
	}
	if seed == "" {
		if name, err := hostname(); err == nil {
			seed = strings.TrimSpace(name)
		}
	}
	if seed == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("overlayd-node-id\x00" + seed))
	return hex.EncodeToString(sum[:16])
}
