package iptables

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// IPSetRunner runs the ipset binary. Restore applies a whole batch in one
// call, which is what makes a 10,000-member update one step.
type IPSetRunner interface {
	// ListNames returns the names of all sets (ipset list -n).
	ListNames() ([]string, error)
	// Save returns the output of "ipset save <set>": a create line, then one
	// "add <set> <member>" line per member.
	Save(set string) (string, error)
	// Restore feeds commands, one per line, to "ipset restore".
	Restore(commands string) error
}

// ExecIPSet is the IPSetRunner that execs the ipset binary.
type ExecIPSet struct {
	// Command is how ipset is started, e.g. {"ipset"}, or
	// {"ip", "netns", "exec", "ns1", "ipset"} to work inside a namespace.
	Command []string
}

// NewIPSetRunner returns an IPSetRunner that runs "ipset" from PATH.
func NewIPSetRunner() *ExecIPSet {
	return &ExecIPSet{Command: []string{"ipset"}}
}

// ListNames implements IPSetRunner.
func (e *ExecIPSet) ListNames() ([]string, error) {
	out, err := e.run("", "list", "-n")
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// Save implements IPSetRunner.
func (e *ExecIPSet) Save(set string) (string, error) {
	return e.run("", "save", set)
}

// Restore implements IPSetRunner.
func (e *ExecIPSet) Restore(commands string) error {
	_, err := e.run(commands, "restore")
	return err
}

func (e *ExecIPSet) run(stdin string, args ...string) (string, error) {
	if len(e.Command) == 0 {
		return "", fmt.Errorf("ipset %s: ExecIPSet.Command is empty", strings.Join(args, " "))
	}
	argv := append(append([]string{}, e.Command[1:]...), args...)
	cmd := exec.Command(e.Command[0], argv...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ipset %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// savedMembers parses "ipset save" output into the members of set.
func savedMembers(out, set string) ([]netip.Addr, error) {
	var members []netip.Addr
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "add" || f[1] != set {
			continue
		}
		a, err := netip.ParseAddr(f[2])
		if err != nil {
			return nil, fmt.Errorf("ipset save %s: member %q: %w", set, f[2], err)
		}
		members = append(members, a)
	}
	return members, nil
}
