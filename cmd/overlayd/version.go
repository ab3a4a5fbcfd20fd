package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version and commit are set at build time with
// -ldflags "-X main.version=v0.1.0 -X main.commit=<git commit>" (the
// Dockerfile does). Without commit, the module's VCS stamp is used.
var (
	version = "dev"
	commit  = ""
)

func versionString() string {
	rev := "unknown"
	if commit != "" && commit != "unknown" {
		rev = commit[:min(len(commit), 12)]
	} else if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("overlayd %s (commit %s, %s)", version, rev, runtime.Version())
}

func registerBuildInfo(reg prometheus.Registerer) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "overlayd_build_info",
		Help: "Always 1; labels carry the version and Go version.",
	}, []string{"version", "goversion"})
	g.WithLabelValues(version, runtime.Version()).Set(1)
	reg.MustRegister(g)
}
