// Package registrytest is a conformance suite for subnet.Registry
// implementations: every etcd API binding (v3 now, v2 later) runs the same
// cases against a real server, so they behave alike for the manager.
package registrytest

import (
	"testing"

	"github.com/overlayd/overlayd/subnet"
)

// Env is one fresh registry on an empty keyspace, with raw access to it.
type Env struct {
	// Registry is the implementation under test, using Prefix.
	Registry subnet.Registry
	// PutRaw writes value at the full key as-is and without TTL (to plant
	// malformed keys or values, reservations and the network config).
	PutRaw func(key, value string) error
	// LoseHistory makes every revision before the current one unavailable
	// to watches (etcd v3: compaction).
	LoseHistory func() error
	// Prefix is the registry's key prefix, e.g. /overlayd-test/7.
	Prefix string
}

// Case is one conformance check.
type Case struct {
	Name string
	Run  func(t *testing.T, env Env)
}

// Cases returns the conformance checks, for implementations that want to
// run a subset.
func Cases() []Case {
	return []Case{
		{"ConfigMissing", testConfigMissing},
		{"ConfigPresent", testConfigPresent},
		{"CreateTwice", testCreateTwice},
		{"ConcurrentCreateOneWins", testConcurrentCreate},
		{"ListReturnsAttrs", testListReturnsAttrs},
		{"CreatedOrdersByAge", testCreatedOrdersByAge},
		{"UpdateLease", testUpdateLease},
		{"UpdateMissingLease", testUpdateMissingLease},
		{"UpdateKeepsReservation", testUpdateKeepsReservation},
		{"DeleteLease", testDeleteLease},
		{"TTLExpiry", testTTLExpiry},
		{"WatchFromRevision", testWatchFromRevision},
		{"WatchStopsOnCancel", testWatchStopsOnCancel},
		{"MalformedSkippedInList", testMalformedSkippedInList},
		{"MalformedSkippedInWatch", testMalformedSkippedInWatch},
		{"HistoryLost", testHistoryLost},
	}
}

// Run checks the subnet.Registry contract. newEnv is called once per case
// and must return a registry on an empty keyspace (a fresh prefix will do).
// Cases run one after another: LoseHistory may affect a whole server.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	t.Helper()
	runCases(t, Cases(), newEnv)
}

// runCases runs each case as a subtest on its own fresh Env.
func runCases(t *testing.T, cases []Case, newEnv func(t *testing.T) Env) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) { c.Run(t, newEnv(t)) })
	}
}
