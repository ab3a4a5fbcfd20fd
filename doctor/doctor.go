package doctor

import (
	"context"
	"time"
)

// check is one group's function: it appends its results.
type check func(ctx context.Context, e *Env, f *facts, r *Report)

// groups run in this order; each lives in a file of its own.
func groups() []check {
	return []check{
		checkDaemon,    // daemon.go
		checkKernel,    // kernel.go
		checkIPTables,  // iptables.go
		checkFiles,     // files.go
		checkAddresses, // addresses.go
		checkReach,     // reach.go
		checkDatastore, // datastore.go
		checkOffload,   // daemon.go
	}
}

// Run runs every check and returns the report.
func Run(ctx context.Context, e *Env) Report {
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Opts.ProbeTimeout <= 0 {
		e.Opts.ProbeTimeout = 2 * time.Second
	}
	if e.Opts.MaxPeers <= 0 {
		e.Opts.MaxPeers = 16
	}
	if e.Opts.SkewWarn <= 0 {
		e.Opts.SkewWarn = 30 * time.Second
	}
	f := gather(ctx, e)
	var r Report
	for _, g := range groups() {
		g(ctx, e, f, &r)
	}
	return r
}
