package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/overlayd/overlayd/bench/podlat/nsnet"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

const (
	iperf3Port = 5201
	// connectAttempts × connectPause bounds the wait for the server to
	// listen: the client is retried while the server starts.
	connectAttempts = 50
	connectPause    = 100 * time.Millisecond
)

// measureIperf3 runs `iperf3 -s -1` in to's namespace and `iperf3 -c -J`
// in from's, and reads the receiver's sum from the client's JSON.
func measureIperf3(ctx context.Context, from, to nsnet.Endpoint, opts Options) (Result, error) {
	port := strconv.Itoa(iperf3Port)
	var serverOut bytes.Buffer
	server := nsCommand(ctx, to.NS, opts.Iperf3, "-s", "-1", "-B", to.IP.String(), "-p", port)
	server.Stdout, server.Stderr = &serverOut, &serverOut
	if err := server.Start(); err != nil {
		return Result{}, fmt.Errorf("start iperf3 server in %s: %w", to, err)
	}
	serverDone := make(chan struct{})
	go func() { server.Wait(); close(serverDone) }()
	defer func() {
		syscall.Kill(-server.Process.Pid, syscall.SIGKILL)
		<-serverDone
	}()

	secs := strconv.Itoa(max(1, int(math.Ceil(opts.Duration.Seconds()))))
	var lastErr error
	for range connectAttempts {
		// A client that finds no server yet fails at once (with an exit
		// status or only with an "error" in its JSON): try again.
		out, err := nsCommand(ctx, from.NS, opts.Iperf3, "-c", to.IP.String(), "-p", port, "-t", secs, "-J").Output()
		if err == nil {
			var res Result
			if res, err = parseIperf3(out); err == nil {
				return res, nil
			}
		}
		lastErr = fmt.Errorf("iperf3 client in %s: %w: %s", from, err, iperf3Error(out))
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-serverDone:
			return Result{}, fmt.Errorf("%w; iperf3 server exited: %s", lastErr, bytes.TrimSpace(serverOut.Bytes()))
		case <-time.After(connectPause):
		}
	}
	return Result{}, lastErr
}

// nsCommand runs bin in ns in its own process group, killed with us.
func nsCommand(ctx context.Context, ns, bin string, args ...string) *exec.Cmd {
	cmd := netnsutil.Command(ctx, ns, append([]string{bin}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// iperf3JSON is the part of `iperf3 -J` output read here.
type iperf3JSON struct {
	Error string `json:"error"`
	End   struct {
		SumSent struct {
			Retransmits int `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			Bytes         int64   `json:"bytes"`
			Seconds       float64 `json:"seconds"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
}

func parseIperf3(out []byte) (Result, error) {
	var j iperf3JSON
	if err := json.Unmarshal(out, &j); err != nil {
		return Result{}, fmt.Errorf("iperf3 JSON: %w", err)
	}
	if j.Error != "" {
		return Result{}, fmt.Errorf("iperf3: %s", j.Error)
	}
	rx := j.End.SumReceived
	if rx.BitsPerSecond <= 0 {
		return Result{}, fmt.Errorf("iperf3 JSON: end.sum_received.bits_per_second is %v", rx.BitsPerSecond)
	}
	return Result{
		Tool:          ToolIperf3,
		BitsPerSecond: rx.BitsPerSecond,
		Bytes:         rx.Bytes,
		Duration:      time.Duration(rx.Seconds * float64(time.Second)),
		Retransmits:   j.End.SumSent.Retransmits,
	}, nil
}

// iperf3Error extracts the "error" of a failed run's JSON, or the raw
// output when it is not JSON.
func iperf3Error(out []byte) string {
	var j iperf3JSON
	if json.Unmarshal(out, &j) == nil && j.Error != "" {
		return j.Error
	}
	return string(bytes.TrimSpace(out))
}
