# Samsa. `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
TOOLS := $(CURDIR)/.cache/bin
export PATH := $(TOOLS):$(PATH)

SERVICES := receiver transformer deliverer control
GOTEST_FLAGS ?= -race -count=1 -timeout 15m

.PHONY: help dev test test-unit test-faults test-ui build bench bench-soak bench-micro proto proto-check lint kafka tools fuzz deps clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

dev: build ## the whole platform in one process on the embedded broker, with a demo
	$(BIN)/samsa dev $(DEV_FLAGS)

deps: ## everything tests need: Kafka jars, PostgreSQL server
	scripts/kafka.sh fetch
	scripts/deps.sh

test: deps ## unit and integration tests on a real Kafka broker and PostgreSQL
	scripts/with-kafka.sh $(GO) test $(GOTEST_FLAGS) ./...

test-ui: build ## the dashboard's end-to-end tests in headless Chromium (tests/browser; screenshots in tests/browser/artifacts)
	scripts/deps-ui.sh
	cd tests/browser && SAMSA_BIN=$(CURDIR)/$(BIN)/samsa node run.mjs

test-unit: ## unit tests only (kfake, no external processes)
	$(GO) test -short -race -count=1 ./...

build: ## binaries into bin/
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/samsa $(addprefix ./services/,$(SERVICES))

BENCH_STAGES ?=
bench: deps ## end-to-end benchmark on a real broker; writes docs/benchmarks.md (BENCH_STAGES=ingest,... runs some)
	SAMSA_BENCH=1 SAMSA_BENCH_STAGES=$(BENCH_STAGES) SAMSA_BENCH_OUT=$(CURDIR)/docs/benchmarks.md SAMSA_KAFKA_FULL_JIT=1 \
		$(GO) test -run TestBench -v -count=1 -timeout 3h ./tests/bench/

bench-soak: deps ## make bench plus a 10-minute soak watching every service's memory
	SAMSA_BENCH_SOAK=10m $(MAKE) bench

bench-micro: deps ## every go test -bench benchmark of the packages
	scripts/with-kafka.sh $(GO) test -run '^$$' -bench . -benchmem ./...

fuzz: ## run every fuzz target for FUZZTIME each (default 1m; a count such as 10000x also works)
	scripts/fuzz.sh $${FUZZTIME:-1m}

tools: ## install the pinned code generators and linters into .cache/bin
	cd tools && GOWORK=off GOBIN=$(TOOLS) $(GO) install \
	  github.com/bufbuild/buf/cmd/buf \
	  google.golang.org/protobuf/cmd/protoc-gen-go \
	  google.golang.org/grpc/cmd/protoc-gen-go-grpc \
	  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway \
	  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2 \
	  helm.sh/helm/v3/cmd/helm \
	  honnef.co/go/tools/cmd/staticcheck

proto: tools ## regenerate the samsa.v1 code from proto/
	cd proto && buf lint && buf generate

proto-check: proto ## fail when the committed generated code is stale
	@git diff --exit-code -- proto || { echo "generated code in proto/ is stale: run make proto and commit"; exit 1; }

lint: tools ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...

kafka: ## a real Kafka broker in the foreground on 127.0.0.1:9092
	scripts/kafka.sh run --port 9092

clean:
	rm -rf $(BIN)

.PHONY: up down helm-lint

up: ## Kafka, the four services, a webhook sink and Prometheus in Docker (docker-compose.yml)
	docker compose up --build --wait

down: ## stop docker-compose and remove its containers and volumes
	docker compose down --volumes --remove-orphans

# Built without Helm's release ldflags, the tools' helm reports Kubernetes
# v1.20 by default: give it a version the chart's kubeVersion accepts.
HELM_KUBE_VERSION ?= 1.33.0
helm-lint: tools ## helm lint the chart with its default and production values
	helm lint --strict --kube-version $(HELM_KUBE_VERSION) charts/samsa
	helm lint --strict --kube-version $(HELM_KUBE_VERSION) charts/samsa -f charts/samsa/examples/production-values.yaml

test-faults: deps ## the fault-injection suite in full: long broker outage, slow destination (tests/e2e, SAMSA_FAULTS=1)
	@mkdir -p .cache
	SAMSA_FAULTS=1 $(GO) test $(GOTEST_FLAGS) -timeout 40m -v ./tests/e2e/... 2>&1 | tee .cache/test-faults.log | grep -E '^(scenario=|--- |ok|FAIL|PASS)'; exit $${PIPESTATUS[0]}
