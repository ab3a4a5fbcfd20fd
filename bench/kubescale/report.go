package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
)

// report is the whole run.
type report struct {
	Command string      `json:"command"`
	Date    string      `json:"date"`
	Kernel  string      `json:"kernel"`
	CPUs    string      `json:"cpus"`
	Runs    []runResult `json:"runs"`
}

func run(ctx context.Context, cfg config, log *slog.Logger) (report, error) {
	rep := report{Command: "kubescale " + strings.Join(os.Args[1:], " "), Date: time.Now().UTC().Format(time.RFC3339),
		Kernel: procLine("/proc/sys/kernel/osrelease"), CPUs: cpuCount()}
	work, err := os.MkdirTemp("", "kubescale-bin-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(work)
	if cfg.bin == "" {
		log.Info("building overlayd")
		if cfg.bin, err = lab.BuildOverlayd(ctx, work); err != nil {
			return rep, err
		}
	}
	if cfg.flanneld == "auto" {
		cfg.flanneld = ""
		if bin, err := lab.FlanneldBinary(); err == nil {
			cfg.flanneld = bin
		} else {
			log.Info("no flanneld: run scripts/flanneld.sh to compare", "err", err)
		}
	}
	for _, n := range cfg.ns {
		r, err := runOne(ctx, cfg, n, log)
		rep.Runs = append(rep.Runs, r)
		if err != nil {
			return rep, fmt.Errorf("N=%d: %w", n, err)
		}
	}
	return rep, nil
}

func (r report) write(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "kubescale.json"), data, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "kubescale.md"), []byte(r.markdown()), 0o644)
}

func (r report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "`%s` — %s, kernel %s, %s CPUs\n\n", r.Command, r.Date, r.Kernel, r.CPUs)
	b.WriteString("| N | Nodes created in | kernel limit (3N entries) | agent | converged in | × kernel | peak RSS | RSS then |\n")
	b.WriteString("|---:|---:|---:|---|---:|---:|---:|---:|\n")
	for _, run := range r.Runs {
		limit := run.Kernel.TotalSeconds
		for i, a := range run.Agents {
			head := fmt.Sprintf("| %d | %.1f s | %.2f s ", run.N, run.NodeCreateSeconds, limit)
			if i > 0 {
				head = "| | | "
			}
			name := a.Agent
			if len(a.Env) > 0 {
				name += " (" + strings.Join(a.Env, " ") + ")"
			}
			conv := fmt.Sprintf("%.2f s", a.Seconds)
			ratio := fmt.Sprintf("%.2f", a.Seconds/limit)
			if !a.Converged {
				conv, ratio = "**no**: "+a.Note+fmt.Sprintf(" (%d routes)", a.Entries.Routes), "—"
			}
			fmt.Fprintf(&b, "%s| %s | %s | %s | %.1f MiB | %.1f MiB |\n", head, name, conv, ratio, a.PeakRSSMiB, a.RSSMiB)
		}
	}
	return b.String()
}

func procLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(data))
}

func cpuCount() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	return fmt.Sprint(strings.Count(string(data), "\nprocessor") + 1)
}
