// Package faults proves, with integration tests that fail when the
// property breaks, that overlayd keeps the pod network working and loses
// no state under faults: etcd restarted, unreachable or compacted,
// malformed entries and config, kernel drift, crashes in the middle of a
// sync, many nodes starting at once, an exhausted network, and peers that
// change their VTEP MAC or address. Each test runs real overlayd
// processes in network namespaces (internal/lab) against a real etcd and
// the real kernel; it needs root and skips otherwise.
//
// The fault matrix (fault, expected behaviour, test) is in
// docs/reliability.md. A long randomised soak runs only with
// -soak=DURATION:
//
//	go test ./test/faults -run Soak -soak=10m -timeout 30m
package faults
