package migrate

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Outcome is what happened to one key.
type Outcome int

const (
	// Copied: the key was absent in v3 and was written.
	Copied Outcome = iota
	// Overwritten: v3 held something else and Force replaced it.
	Overwritten
	// AlreadyPresent: v3 already holds the same lease or config.
	AlreadyPresent
	// Conflict: v3 holds something else; it was left alone.
	Conflict
	// Skipped: the v2 key cannot be migrated (malformed, or missing).
	Skipped
)

func (o Outcome) String() string {
	switch o {
	case Copied:
		return "copied"
	case Overwritten:
		return "overwritten"
	case AlreadyPresent:
		return "already present"
	case Conflict:
		return "conflict"
	case Skipped:
		return "skipped"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// label is the outcome as the table shows it: a dry run says what would
// have been done.
func (o Outcome) label(dryRun bool) string {
	switch {
	case dryRun && o == Copied:
		return "would copy"
	case dryRun && o == Overwritten:
		return "would overwrite"
	}
	return o.String()
}

// Item is the result for one key.
type Item struct {
	// Key is the v3 key written (or that would be); for a skipped v2 key,
	// the v2 key.
	Key     string
	Outcome Outcome
	// TTL is the etcd lease TTL given to a copied lease; zero for the
	// config and reservations.
	TTL         time.Duration
	Reservation bool
	// Detail explains a conflict, an overwrite or a skip.
	Detail string
}

// Report lists every key the migration looked at: the config, the leases
// by subnet, then the v2 keys that are not leases.
type Report struct {
	DryRun bool
	Items  []Item
}

// Count returns how many items have outcome o.
func (r Report) Count(o Outcome) int {
	n := 0
	for _, it := range r.Items {
		if it.Outcome == o {
			n++
		}
	}
	return n
}

// Writes returns how many keys were (or, in a dry run, would be) written.
func (r Report) Writes() int { return r.Count(Copied) + r.Count(Overwritten) }

// WriteTable prints the report as an aligned table and a summary line.
func (r Report) WriteTable(w io.Writer) error {
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tRESULT\tTTL\tDETAIL")
	for _, it := range r.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.Key, it.Outcome.label(r.DryRun), ttlColumn(it), it.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(table.String()) {
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " \n")); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, r.summary())
	return err
}

func ttlColumn(it Item) string {
	switch {
	case it.Reservation:
		return "none (reservation)"
	case it.TTL > 0:
		return it.TTL.String()
	}
	return "-"
}

func (r Report) summary() string {
	parts := make([]string, 0, int(Skipped)+1)
	for o := Copied; o <= Skipped; o++ {
		parts = append(parts, fmt.Sprintf("%d %s", r.Count(o), o))
	}
	s := strings.Join(parts, ", ")
	if r.DryRun {
		s += " (dry run: nothing was written)"
	}
	if n := r.Count(Conflict); n > 0 {
		s += fmt.Sprintf("; %d conflicting v3 key(s) left alone: check them, then use --force to overwrite", n)
	}
	return s
}
