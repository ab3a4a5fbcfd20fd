// Package doctor checks a node for the failures that keep a flannel-style
// VXLAN overlay from working (kernel settings, iptables, files, addresses,
// reachability, the datastore, checksum offload) and says for each what is
// wrong and the one-line fix. It reads the host through small interfaces
// (host.go), so tests use fakes; it changes nothing unless asked to fix
// the safe things (sysctls, module load), and then reports each change.
package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Status is one check's verdict.
type Status int

// Verdicts, in order of severity.
const (
	Skip Status = iota // not applicable or not checkable here
	OK
	Warn
	Fail
)

// Symbol is the one-character mark the table shows.
func (s Status) Symbol() string {
	switch s {
	case OK:
		return "✓"
	case Warn:
		return "!"
	case Fail:
		return "✗"
	}
	return "-"
}

func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Warn:
		return "warn"
	case Fail:
		return "fail"
	}
	return "skip"
}

// MarshalText writes the lower-case name ("ok", "warn", "fail", "skip").
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the lower-case name.
func (s *Status) UnmarshalText(b []byte) error {
	for _, c := range []Status{Skip, OK, Warn, Fail} {
		if c.String() == string(b) {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("check status %q: want ok, warn, fail or skip", b)
}

// Result is one check's outcome.
type Result struct {
	Group  string `json:"group"`
	Check  string `json:"check"`
	Status Status `json:"status"`
	// Detail says what was found, in one line.
	Detail string `json:"detail"`
	// Fix is the one-line remedy (empty when nothing is wrong).
	Fix string `json:"fix,omitempty"`
	// Changed says what --fix changed for this check.
	Changed string `json:"changed,omitempty"`
}

// Report is every check's result in the order they ran.
type Report struct {
	Results []Result `json:"results"`
	// Worst is the most severe status among the results.
	Worst Status `json:"worst"`
}

// Exit codes of `overlayd doctor`: scripts test them.
const (
	ExitOK       = 0 // every check passed (or was skipped)
	ExitWarnings = 1 // at least one warning, no failure
	ExitFailures = 2 // at least one failure
	ExitError    = 3 // doctor itself could not run (bad flags)
)

// ExitCode maps the worst status to the exit code.
func (r Report) ExitCode() int {
	switch r.Worst {
	case Fail:
		return ExitFailures
	case Warn:
		return ExitWarnings
	}
	return ExitOK
}

func (r *Report) add(res Result) {
	r.Results = append(r.Results, res)
	if res.Status > r.Worst {
		r.Worst = res.Status
	}
}

// Find returns the first result of group/check.
func (r Report) Find(group, check string) (Result, bool) {
	for _, res := range r.Results {
		if res.Group == group && res.Check == check {
			return res, true
		}
	}
	return Result{}, false
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes one line per check, the fix and any change under it.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.Status.Symbol(), res.Group, res.Check, oneLine(res.Detail))
		if res.Fix != "" && res.Status > OK {
			fmt.Fprintf(tw, "\t\t\tfix: %s\n", oneLine(res.Fix))
		}
		if res.Changed != "" {
			fmt.Fprintf(tw, "\t\t\tchanged: %s\n", oneLine(res.Changed))
		}
	}
	fmt.Fprintf(tw, "\n%s\n", r.summary())
	return tw.Flush()
}

func (r Report) summary() string {
	n := map[Status]int{}
	for _, res := range r.Results {
		n[res.Status]++
	}
	return fmt.Sprintf("%d ok, %d warnings, %d failures, %d skipped", n[OK], n[Warn], n[Fail], n[Skip])
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
