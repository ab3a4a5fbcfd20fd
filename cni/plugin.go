package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// SupportedVersions are the CNI specification versions the plugin accepts,
// as flannel's plugin does; the delegate must support the one used.
func SupportedVersions() []string {
	return []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}
}

// currentVersion is the newest supported version: VERSION reports it and
// errors without a configuration carry it.
const currentVersion = "1.1.0"

// Plugin is one invocation: the CNI_* variables come from Env, the
// configuration from Stdin, the result goes to Stdout.
type Plugin struct {
	Env    []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Main runs the plugin with the process's environment and standard
// streams and returns the exit status.
func Main() int {
	p := Plugin{Env: os.Environ(), Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	return p.Run(context.Background())
}

// Run executes CNI_COMMAND and returns the exit status: 0, or 1 after
// printing a CNI error on Stdout.
func (p Plugin) Run(ctx context.Context) int {
	version := currentVersion
	if err := p.run(ctx, &version); err != nil {
		writeError(p.Stdout, version, asError(err))
		return 1
	}
	return 0
}

func (p Plugin) getenv(key string) string {
	for i := len(p.Env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(p.Env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

func (p Plugin) run(ctx context.Context, version *string) error {
	cmd := p.getenv("CNI_COMMAND")
	if cmd == "VERSION" {
		return p.printVersion()
	}
	if !slices.Contains([]string{"ADD", "DEL", "CHECK", "GC", "STATUS"}, cmd) {
		return newError(CodeInvalidEnvironment, fmt.Errorf("CNI_COMMAND %q: want ADD, DEL, CHECK, GC, STATUS or VERSION", cmd))
	}
	n, err := p.readConf(version)
	if err != nil {
		return err
	}
	switch cmd {
	case "ADD", "DEL", "CHECK":
		args, err := p.commandArgs(cmd)
		if err != nil {
			return newError(CodeInvalidEnvironment, err)
		}
		return p.dispatch(ctx, cmd, args, n)
	}
	// GC and STATUS: the plugin keeps nothing to collect and is ready
	// whenever it can be run, as flannel's plugin.
	return nil
}

func (p Plugin) dispatch(ctx context.Context, cmd string, args commandArgs, n NetConf) error {
	switch cmd {
	case "ADD":
		return p.add(ctx, args, n)
	case "DEL":
		return p.del(ctx, args, n)
	}
	// CHECK: flannel's plugin checks nothing and succeeds; so does this one.
	return nil
}

func (p Plugin) printVersion() error {
	out, err := json.Marshal(map[string]any{"cniVersion": currentVersion, "supportedVersions": SupportedVersions()})
	if err != nil {
		return err
	}
	_, err = p.Stdout.Write(append(out, '\n'))
	return err
}

// readConf reads and decodes stdin and checks its cniVersion (absent is
// 0.1.0, as the specification says).
func (p Plugin) readConf(version *string) (NetConf, error) {
	data, err := io.ReadAll(p.Stdin)
	if err != nil {
		return NetConf{}, newError(CodeIOFailure, fmt.Errorf("read network configuration from stdin: %w", err))
	}
	n, err := ParseNetConf(data)
	if err != nil {
		return NetConf{}, newError(CodeDecodingFailure, err)
	}
	v := n.CNIVersion
	if v == "" {
		v = "0.1.0"
	}
	if !slices.Contains(SupportedVersions(), v) {
		return NetConf{}, newError(CodeIncompatibleVersion, fmt.Errorf("cniVersion %q: supported are %s", v, strings.Join(SupportedVersions(), ", ")))
	}
	*version = v
	return n, nil
}

// commandArgs are the CNI_* variables of ADD, DEL and CHECK.
type commandArgs struct {
	containerID string
	netns       string
	ifName      string
	path        string
}

// commandArgs reads and checks them: CNI_NETNS is not needed for DEL.
func (p Plugin) commandArgs(cmd string) (commandArgs, error) {
	a := commandArgs{
		containerID: p.getenv("CNI_CONTAINERID"),
		netns:       p.getenv("CNI_NETNS"),
		ifName:      p.getenv("CNI_IFNAME"),
		path:        p.getenv("CNI_PATH"),
	}
	required := []struct{ key, value string }{
		{"CNI_CONTAINERID", a.containerID},
		{"CNI_IFNAME", a.ifName},
		{"CNI_PATH", a.path},
	}
	if cmd != "DEL" {
		required = append(required, struct{ key, value string }{"CNI_NETNS", a.netns})
	}
	for _, r := range required {
		if r.value == "" {
			return a, fmt.Errorf("%s is not set (needed by %s)", r.key, cmd)
		}
	}
	return a, checkContainerID(a.containerID)
}
