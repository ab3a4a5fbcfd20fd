package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// hostMachineID is the file an agent reads to identify its machine
// (overlayd seeds its VTEP MAC with it).
const hostMachineID = "/etc/machine-id"

// writeMachineID gives node n an identity of its own: all nodes share the
// machine's filesystem, and agents seeding anything from /etc/machine-id
// would otherwise look like clones of one VM image.
func writeMachineID(n *Node) error {
	var id [16]byte
	rand.Read(id[:])
	n.MachineIDFile = filepath.Join(n.Dir, "machine-id")
	if err := os.WriteFile(n.MachineIDFile, []byte(hex.EncodeToString(id[:])+"\n"), 0o444); err != nil {
		return fmt.Errorf("node %s machine id: %w", n.Name, err)
	}
	return nil
}

// withMachineID wraps argv so that the process sees n's machine-id at
// /etc/machine-id. `ip netns exec` already runs it in a private mount
// namespace, so the bind mount is invisible to everyone else; sh then
// execs argv, keeping the process id. Hosts without /etc/machine-id run
// argv as is.
func withMachineID(n *Node, argv []string) []string {
	if _, err := os.Stat(hostMachineID); errors.Is(err, fs.ErrNotExist) || n.MachineIDFile == "" {
		return argv
	}
	script := `mount --bind "$0" ` + hostMachineID + ` && exec "$@"`
	return append([]string{"sh", "-c", script, n.MachineIDFile}, argv...)
}
