# The README's two commands: `make demo` (the provisioner's main job, on a local control plane with the
# Jenkins emulator) and `make test`. Everything the tests need is built here from the Go module proxy.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
# KUBEBUILDER_ASSETS may be given by a user who already has envtest binaries; else we build them.
ASSETS = $${KUBEBUILDER_ASSETS:-$$(./hack/build-control-plane.sh | tail -n 1)}
# KUEUE_ASSETS likewise: a folder with Kueue's bin/kueue, crd/ and webhook/ (hack/build-kueue.sh).
KUEUE_ASSETS_DIR = $${KUEUE_ASSETS:-$$(./hack/build-kueue.sh | tail -n 1)}
TEST_TIMEOUT ?= 45m
FUZZTIME ?= 20s

.PHONY: all build test unit lint vet staticcheck fmt-check control-plane kueue chromium demo fuzz bench bench-kueue chaos bench-smoke chaos-smoke image clean

all: build

## build: bin/provisioner (production: links no test rig) and bin/provisioner-demo (the demo, with its rigs)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/provisioner ./cmd/provisioner
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/provisioner-demo ./cmd/provisioner-demo

## control-plane: build kube-apiserver, kube-controller-manager and etcd into .cache (idempotent)
control-plane:
	@if [ -z "$${KUBEBUILDER_ASSETS:-}" ]; then ./hack/build-control-plane.sh >/dev/null; fi

## kueue: build Kueue's manager (sigs.k8s.io/kueue/cmd/kueue) with its CRDs and webhook manifests
## into .cache for the tests that run a real Kueue (idempotent; about 7 minutes cold)
kueue:
	@if [ -z "$${KUEUE_ASSETS:-}" ]; then ./hack/build-kueue.sh >/dev/null; fi

## chromium: Debian's chromium for the status page's browser tests (idempotent)
chromium:
	@./hack/install-chromium.sh >/dev/null

## test: everything CI runs: lint, then every test on the real control plane
test: control-plane kueue chromium lint
	KUBEBUILDER_ASSETS=$(ASSETS) KUEUE_ASSETS=$(KUEUE_ASSETS_DIR) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

## unit: the quicker run (-short skips the 1000-agent scale test and the browser tests)
unit:
	$(GO) test -count=1 -short ./...

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## demo: the whole thing on this machine, nothing given
demo: control-plane build
	KUBEBUILDER_ASSETS=$(ASSETS) ./bin/provisioner-demo

## fuzz: every fuzz target for FUZZTIME each
fuzz:
	$(GO) test ./internal/labelexpr -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./internal/jenkins -run '^$$' -fuzz FuzzParseWhy -fuzztime $(FUZZTIME)
	$(GO) test ./internal/jenkins -run '^$$' -fuzz FuzzParseJNLP -fuzztime $(FUZZTIME)
	$(GO) test ./internal/podtemplate -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) -fuzzminimizetime 200x
	$(GO) test ./internal/statuspage -run '^$$' -fuzz FuzzBuildName -fuzztime $(FUZZTIME)
	$(GO) test ./internal/nodesim -run '^$$' -fuzz FuzzParseBehaviour -fuzztime $(FUZZTIME)
	$(GO) test ./internal/testenv -run '^$$' -fuzz FuzzParseOwner -fuzztime $(FUZZTIME)

## bench: load figures (latency, burst vs client-go, Jenkins cost, footprint, waste) on the real
## control plane, emulator, node simulator and binary: _output/bench/report.md and report.json
## (BENCH_FLAGS, e.g. -scale medium -reps 1; see go run ./test/bench -h)
BENCH_FLAGS ?=
bench: control-plane
	KUBEBUILDER_ASSETS=$(ASSETS) $(GO) run ./test/bench -out _output/bench $(BENCH_FLAGS)

## bench-kueue: two teams sharing a cluster through a real Kueue vs plain per-controller caps
## (time to team B's first build under team A's flood): _output/bench/kueue.md and kueue.json
bench-kueue: control-plane kueue
	KUBEBUILDER_ASSETS=$(ASSETS) KUEUE_ASSETS=$(KUEUE_ASSETS_DIR) $(GO) run ./test/bench -kueue -out _output/bench

## chaos: fault runs (SIGKILL, Jenkins faults and outage, apiserver restart, ResourceQuota, leader
## kills, fuzzing), each checked for lost builds and leftovers: _output/chaos/report.md and report.json
CHAOS_FLAGS ?=
chaos: control-plane
	KUBEBUILDER_ASSETS=$(ASSETS) $(GO) run ./test/chaos -out _output/chaos $(CHAOS_FLAGS)

## bench-smoke, chaos-smoke: the tiny runs `make test` also executes (test/harness)
bench-smoke: control-plane
	KUBEBUILDER_ASSETS=$(ASSETS) $(GO) test -count=1 -v -run '^TestBenchSmoke$$' ./test/harness

chaos-smoke: control-plane
	KUBEBUILDER_ASSETS=$(ASSETS) $(GO) test -count=1 -v -run '^TestChaosSmoke$$' ./test/harness

image:
	docker build --build-arg VERSION=$(VERSION) -t jenkins-agent-provisioner:$(VERSION) .

clean:
	rm -rf bin _output
