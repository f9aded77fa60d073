// Package harness runs the provisioner's load and fault scenarios (`make bench`, `make chaos`) and
// their CI smoke runs.
//
// Why it exists: unit and end-to-end tests show the provisioner does the right thing; they do not
// show it stays fast, cheap and lossless with hundreds of builds, with Jenkins failing requests,
// with the apiserver going away or with the provisioner itself killed. Those claims need numbers
// from the same parts a user runs: the real kube-apiserver, etcd and garbage collector
// (internal/testenv), the Jenkins emulator (internal/jenkins/jenkinstest), the node simulator
// (internal/nodesim) and the provisioner binary built from cmd/provisioner, started as a separate
// process configured only through its PROVISIONER_* variables, so that SIGKILL, RSS and CPU are
// the real process's.
//
// One Plane (control plane plus the built binary) serves a whole command; each scenario run gets
// a World of its own: a fresh namespace, emulator, simulated node and provisioner processes. All
// timestamps are taken in this process (emulator build records, watch arrival of pod events, the
// simulator's agent connections), so they share one clock; pod timestamps from the apiserver
// (1 s resolution) are not used.
//
// Bench and Chaos run every scenario at a Scale and return a Report that WriteReport renders as
// report.md and report.json; test/bench and test/chaos are the commands, and the smoke tests in
// this package run both at the smallest scale under `go test` (skipped with -short).
package harness
