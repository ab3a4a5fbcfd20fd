package rtt

import (
	"math"
	"slices"
	"time"
)

// Summary describes a set of round trips.
type Summary struct {
	Count int // round trips answered
	Lost  int // round trips with no answer (UDP only)
	Min   time.Duration
	Mean  time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	P999  time.Duration
	Max   time.Duration
}

// Summarize computes the summary of rtts (in any order; not modified).
func Summarize(rtts []time.Duration, lost int) Summary {
	s := Summary{Count: len(rtts), Lost: lost}
	if len(rtts) == 0 {
		return s
	}
	sorted := slices.Clone(rtts)
	slices.Sort(sorted)
	var total time.Duration
	for _, d := range sorted {
		total += d
	}
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	s.Mean = total / time.Duration(len(sorted))
	s.P50 = Percentile(sorted, 0.50)
	s.P90 = Percentile(sorted, 0.90)
	s.P99 = Percentile(sorted, 0.99)
	s.P999 = Percentile(sorted, 0.999)
	return s
}

// Percentile returns the nearest-rank q-quantile (0 < q <= 1) of sorted:
// the smallest sample with at least q of all samples at or below it.
// It returns 0 for no samples.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(sorted)) - 1e-9))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}
