package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// machine describes where the figures were taken.
type machine struct {
	Date     string `json:"date"`
	CPUs     int    `json:"nproc"`
	CPUModel string `json:"cpu_model"`
	Kernel   string `json:"kernel"`
	MemMiB   int    `json:"mem_total_mib"`
	Go       string `json:"go"`
	IPRoute2 string `json:"iproute2"`
}

func describeMachine(ctx context.Context) machine {
	m := machine{Date: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(), Go: runtime.Version()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if mem := procField("/proc/meminfo", "MemTotal"); mem != "" {
		var kb int
		for _, c := range strings.TrimSuffix(mem, " kB") {
			if c >= '0' && c <= '9' {
				kb = kb*10 + int(c-'0')
			}
		}
		m.MemMiB = kb / 1024
	}
	if out, err := exec.CommandContext(ctx, "ip", "-V").Output(); err == nil {
		m.IPRoute2 = strings.TrimSpace(string(out))
	}
	return m
}

// procField returns the first "key : value" line's value of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// describeTree is `git describe --always --dirty` of the working directory,
// or "" outside a checkout.
func describeTree(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
