# Portero build, test and release targets. The logic lives in scripts/ so it
# can be run and tested on its own; this file only names the entry points.
#
#   make run     build, then demo-upstream on 127.0.0.1:8000 + portero on :8080
#   make test    go test -race ./... against PostgreSQL and Redis (started if absent)
#   make soak    the fault-injection suite (its own PostgreSQL, Redis, upstreams)
#   make help    every target

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
IMAGE   ?= portero
FUZZTIME ?= 15s

BINARIES := bin/portero bin/demo-upstream

.PHONY: help build run test soak bench bench-quick lint fuzz docker clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

# Phony, not tracking Go sources: go build already knows what changed
# and is quick when nothing did.
build: ## static binaries in ./bin (VERSION, COMMIT stamped in)
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/portero ./cmd/portero
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/demo-upstream ./cmd/demo-upstream

run: build ## demo-upstream in the background, portero serve --config configs/dev.yaml in the foreground
	bash scripts/run-dev.sh

test: ## go test -race ./... with PostgreSQL and Redis (GOTESTFLAGS, RACE=0)
	bash scripts/test.sh

soak: ## fault injection against the real binary: Redis, PostgreSQL, upstream, restart, reload, floods (SOAK_RUN)
	bash scripts/soak.sh

bench: ## micro-benchmarks, then the load harness's table (BENCH_QUICK, BENCH_PROFILE=dir, BENCH, BENCHTIME)
	bash scripts/bench.sh

bench-quick: ## the load harness alone, in under two minutes (BENCH_PROFILE=dir)
	BENCH_QUICK=1 bash scripts/bench.sh

lint: ## gofmt check, go vet, staticcheck (installed into .tmp/bin)
	bash scripts/lint.sh

fuzz: ## every Fuzz target for FUZZTIME (default 15s) each
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

docker: ## docker build -t portero:VERSION .
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE):$(VERSION) .

clean: ## remove bin/ and .tmp/ (keeps data/)
	rm -rf bin .tmp
