// Package netnsutil creates, enters and removes named network namespaces
// for tests, the demo and benchmarks. Names carry the creating process id
// so that leftovers of a crashed run can be recognised and removed.
package netnsutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// NamePrefix starts every namespace name this project creates.
const NamePrefix = "ovl"

// UniqueName returns "ovl<pid>-<tag>-<random>", short enough for ip(8).
func UniqueName(tag string) string {
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s%d-%s-%s", NamePrefix, os.Getpid(), tag, hex.EncodeToString(b[:]))
}

// Create adds a named namespace with its loopback up.
func Create(name string) error {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	if _, err := Exec(context.Background(), name, "ip", "link", "set", "lo", "up"); err != nil {
		Delete(name)
		return err
	}
	return nil
}

// Delete kills every process still inside the namespace and removes it.
func Delete(name string) error {
	KillAll(name)
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// KillAll sends SIGKILL to every process whose network namespace is name.
func KillAll(name string) {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Exec runs a command inside the namespace and returns its combined output.
func Exec(ctx context.Context, name string, args ...string) (string, error) {
	full := append([]string{"netns", "exec", name}, args...)
	out, err := exec.CommandContext(ctx, "ip", full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("in netns %s: %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Command returns an unstarted command that runs inside the namespace.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	full := append([]string{"netns", "exec", name}, args...)
	return exec.CommandContext(ctx, "ip", full...)
}

// Handle opens a netlink handle bound to the namespace. Close it after use.
func Handle(name string) (*netlink.Handle, error) {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", name, err)
	}
	return h, nil
}

// Do runs fn on a locked OS thread switched into the namespace; sockets fn
// creates stay in that namespace after it returns.
func Do(name string, fn func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter netns %s: %w", name, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: never return it to the pool.
		panic(fmt.Sprintf("netnsutil: cannot leave netns %s: %v", name, err))
	}
	return fnErr
}

// In runs fn like Do and returns what fn returns: a socket made inside
// the namespace.
func In[T any](name string, fn func() (T, error)) (T, error) {
	var v T
	err := Do(name, func() (err error) {
		v, err = fn()
		return err
	})
	return v, err
}

// RemoveStale deletes namespaces with our prefix whose creating process is
// gone (a crashed test or demo) and returns their names.
func RemoveStale() []string {
	names, _ := withPrefix(NamePrefix)
	var removed []string
	for _, name := range names {
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(name, NamePrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || processAlive(pid) {
			continue
		}
		if Delete(name) == nil {
			removed = append(removed, name)
		}
	}
	return removed
}

// Mine lists, sorted, the namespaces this process created (UniqueName's
// names with our pid).
func Mine() ([]string, error) {
	return withPrefix(fmt.Sprintf("%s%d-", NamePrefix, os.Getpid()))
}

// withPrefix lists, sorted, the namespaces whose name starts with prefix.
func withPrefix(prefix string) ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	slices.Sort(names)
	return names, nil
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}
