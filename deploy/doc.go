// Package deploy holds overlayd's deployment artefacts and the tests that
// keep them honest: the systemd unit and its environment file (systemd/),
// the Kubernetes DaemonSet (kubernetes/), and, at the repository root, the
// Dockerfile. The tests check the artefacts against the daemon's real flags
// (cmd/overlayd/flags.go), the flannel compatibility contract (the CNI
// conflist, the files, the health endpoints) and the operator docs, run
// `systemd-analyze verify` when it is installed, and build the release
// binary the way the Dockerfile does to prove it is static.
//
// The package has no Go API.
package deploy
