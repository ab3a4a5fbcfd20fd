package lab

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// pingParallelism bounds concurrent pings in PingAll.
const pingParallelism = 16

// maxListedFailures bounds the pairs PingMatrix.Err spells out.
const maxListedFailures = 10

// PingResult is one ordered pair of a PingMatrix; Err is nil on success.
type PingResult struct {
	From, To *Pod
	Err      error
}

// PingMatrix holds the result of every pod pinging every other pod, in
// row-major order of Pods (from, then to), over one family.
type PingMatrix struct {
	Pods    []*Pod
	Results []PingResult
	// IPv6: the pods' IPv6 addresses were pinged.
	IPv6 bool
}

// Failures returns the failed pairs.
func (m PingMatrix) Failures() []PingResult {
	var failed []PingResult
	for _, r := range m.Results {
		if r.Err != nil {
			failed = append(failed, r)
		}
	}
	return failed
}

// Err summarises the failures, nil when every ping succeeded.
func (m PingMatrix) Err() error {
	failed := m.Failures()
	if len(failed) == 0 {
		return nil
	}
	var lines []string
	for _, r := range failed[:min(len(failed), maxListedFailures)] {
		lines = append(lines, fmt.Sprintf("  %s -> %s: %v", r.From, r.To, r.Err))
	}
	if more := len(failed) - maxListedFailures; more > 0 {
		lines = append(lines, fmt.Sprintf("  ... and %d more", more))
	}
	return fmt.Errorf("%d of %d pings failed:\n%s", len(failed), len(m.Results), strings.Join(lines, "\n"))
}

// String draws the matrix: rows ping, columns are pinged; "ok", "FAIL",
// or "-" on the diagonal.
func (m PingMatrix) String() string {
	width := len(`from \ to`)
	for _, p := range m.Pods {
		width = max(width, len(p.Name))
	}
	verdict := make(map[[2]*Pod]string, len(m.Results))
	for _, r := range m.Results {
		verdict[[2]*Pod{r.From, r.To}] = map[bool]string{true: "ok", false: "FAIL"}[r.Err == nil]
	}
	var b strings.Builder
	row := func(first string, cells func(to *Pod) string) {
		line := fmt.Sprintf("%-*s", width, first)
		for _, to := range m.Pods {
			line += fmt.Sprintf("  %-*s", width, cells(to))
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	row(`from \ to`, func(to *Pod) string { return to.Name })
	for _, from := range m.Pods {
		row(from.Name, func(to *Pod) string {
			if v, ok := verdict[[2]*Pod{from, to}]; ok {
				return v
			}
			return "-"
		})
	}
	return b.String()
}

// PingAll pings every pod from every other pod once (their IPv4
// addresses; IPv6 ones when the pods have no IPv4); the error lists the
// failed pairs.
func (l *Lab) PingAll(ctx context.Context) (PingMatrix, error) {
	pods := l.AllPods()
	m := newPingMatrix(pods, onlyIPv6(pods))
	l.pingPairs(ctx, m, allIndexes(len(m.Results)))
	return m, m.Err()
}

// onlyIPv6 reports whether the pods have IPv6 addresses only.
func onlyIPv6(pods []*Pod) bool {
	return len(pods) > 0 && !pods[0].IP.IsValid() && pods[0].IP6.IsValid()
}

// PingAllRetry is PingAll, then up to attempts-1 more rounds (pause
// apart) re-pinging only the pairs that failed, while routes converge.
func (l *Lab) PingAllRetry(ctx context.Context, attempts int, pause time.Duration) (PingMatrix, error) {
	pods := l.AllPods()
	return l.PingAllFamilyRetry(ctx, onlyIPv6(pods), attempts, pause)
}

// PingAllFamilyRetry is PingAllRetry over one family: the pods' IPv6
// addresses when ipv6, else their IPv4 ones.
func (l *Lab) PingAllFamilyRetry(ctx context.Context, ipv6 bool, attempts int, pause time.Duration) (PingMatrix, error) {
	m := newPingMatrix(l.AllPods(), ipv6)
	todo := allIndexes(len(m.Results))
	for attempt := 1; ; attempt++ {
		l.pingPairs(ctx, m, todo)
		todo = failedIndexes(m.Results)
		if len(todo) == 0 || attempt >= attempts || ctx.Err() != nil {
			return m, m.Err()
		}
		l.log.Debug("ping round failed, retrying", "attempt", attempt, "failed", len(todo))
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

func newPingMatrix(pods []*Pod, ipv6 bool) PingMatrix {
	m := PingMatrix{Pods: pods, IPv6: ipv6}
	for _, from := range pods {
		for _, to := range pods {
			if from != to {
				m.Results = append(m.Results, PingResult{From: from, To: to})
			}
		}
	}
	return m
}

// pingPairs pings m.Results[i] for each i in todo, a few at a time, and
// stores each outcome in place.
func (l *Lab) pingPairs(ctx context.Context, m PingMatrix, todo []int) {
	results := m.Results
	sem := make(chan struct{}, pingParallelism)
	var wg sync.WaitGroup
	for _, i := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func(r *PingResult) {
			defer wg.Done()
			defer func() { <-sem }()
			r.Err = PingFrom(ctx, r.From.NS, r.To.Addr(m.IPv6))
		}(&results[i])
	}
	wg.Wait()
}

func allIndexes(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

func failedIndexes(results []PingResult) []int {
	var idx []int
	for i, r := range results {
		if r.Err != nil {
			idx = append(idx, i)
		}
	}
	return idx
}
