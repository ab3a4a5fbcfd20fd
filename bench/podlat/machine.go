package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/overlayd/overlayd/bench/podlat/report"
)

// describeMachine reads the CPU count, the CPU model, the kernel release
// and the tool versions; unknown values read "unknown".
func describeMachine(iperf3 string) report.Machine {
	m := report.Machine{
		CPUs:     runtime.NumCPU(),
		CPUModel: cpuModel("/proc/cpuinfo"),
		Kernel:   kernelRelease(),
		Go:       runtime.Version(),
		LoadAvg:  loadAverage("/proc/loadavg"),
	}
	if iperf3 != "" {
		m.Iperf3 = iperf3Version(iperf3)
	}
	return m
}

// cpuModel is the first "model name" of a cpuinfo file.
func cpuModel(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return parseCPUModel(data)
}

func parseCPUModel(cpuinfo []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.Join(strings.Fields(val), " ")
		}
	}
	return "unknown"
}

// loadAverage is the first three fields of a loadavg file, "" if unreadable.
func loadAverage(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func iperf3Version(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "iperf3 (version unknown)"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	// "iperf 3.12 (cJSON 1.7.15)" -> "iperf 3.12"
	if i := strings.Index(first, " ("); i > 0 {
		first = first[:i]
	}
	return strings.TrimSpace(first)
}
