# weft — build, test and demo entry points. Every target installs what it needs and no more
# (e2e/scripts/deps.sh groups: demo, test, bench, generate), idempotently, so a bare Debian
# machine works.
SHELL   := /bin/bash
GO      ?= go
BIN     := $(CURDIR)/bin
CACHE   := $(CURDIR)/.cache
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/weftmesh/weft/internal/version.Version=$(VERSION)
export WEFT_BIN_DIR := $(BIN)
export WEFT_CACHE_DIR := $(CACHE)

# Every main package of the module becomes bin/<directory name>.
MAINS = $(shell $(GO) list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' ./...)

.PHONY: all build deps deps-demo deps-bench kube-bins test test-unit e2e cluster-up cluster-down demo demo-down bench lint generate web clean

all: build

deps: ## apt packages the tests need: the demo's plus tcpdump, promtool, nginx, haproxy (idempotent)
	@bash e2e/scripts/deps.sh test

deps-demo: ## apt packages the local cluster and the demo need (idempotent)
	@bash e2e/scripts/deps.sh demo

deps-bench: ## apt packages the benchmark needs: peers, load generators, capture tools (idempotent)
	@bash e2e/scripts/deps.sh bench

build: ## all binaries into bin/
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ $(MAINS)

kube-bins: ## kube-apiserver and kube-controller-manager, cached by version
	@bash e2e/scripts/kube-bins.sh

test: deps build kube-bins lint test-unit e2e ## everything CI runs

test-unit: ## unit and integration tests (real sockets, network namespaces)
	$(GO) test -count=1 -timeout 30m ./...

e2e: deps build kube-bins ## end-to-end tests against the local cluster (started if needed)
	@mkdir -p $(CACHE)
	$(GO) test -count=1 -tags e2e -p 1 -timeout 45m -v ./e2e/cluster/ ./e2e/tests/... 2>&1 | tee $(CACHE)/e2e.log | grep --line-buffered -E '^(=== RUN|--- |PASS|FAIL|ok|panic)' ; exit $${PIPESTATUS[0]}

cluster-up: deps-demo build kube-bins ## start the local cluster (idempotent)
	bin/weft-cluster up

cluster-down: ## stop the local cluster and remove its state
	bin/weft-cluster down

# The three prerequisites run in parallel: apt and module downloads overlap the compiles.
demo: ## local cluster + demo app, then traffic figures (installs only the demo's packages)
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory -j3 deps-demo build kube-bins && \
	echo "demo: [$$(( $$(date +%s) - start ))s] prerequisites ready: packages, weft binaries, kube binaries" && \
	DEMO_START=$$start bash e2e/scripts/demo.sh up

demo-down: ## remove everything demo started
	@bash e2e/scripts/demo.sh down

bench: deps-bench build ## proxy benchmarks against named peers
	@bash benchmarks/run.sh

lint: ## gofmt + go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^e2e/kubebin/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

generate: ## protobuf code (api/ and the demo's)
	@bash e2e/scripts/deps.sh generate
	@bash api/generate.sh
	@bash e2e/demo/api/generate.sh

web: ## rebuild the dashboard's committed assets (viz/web/dist) from viz/web/src with the locked npm toolchain
	cd viz/web && npm ci --ignore-scripts --no-audit --no-fund && npm run build

clean:
	rm -rf $(BIN)
