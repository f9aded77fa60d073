// Package deploy holds what an operator applies to run the provisioner: the kustomize base in
// manifests/, the agents-namespace overlay in overlays/, and the Grafana dashboard in grafana/.
//
// It has no Go code of its own; it is a package so that its tests (which build the kustomizations
// and dry-run every object against a real kube-apiserver, and check the repository's Dockerfile)
// run with `go test ./...` like every other test, instead of trusting manifests nobody applied.
package deploy
