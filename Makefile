# Perpetua Flow API. `make run` starts the server on the embedded SQLite;
# `make test` runs the whole suite on SQLite and on PostgreSQL.

GO         ?= go
BINARY     ?= bin/perpetua
# perpetua --version prints: perpetua <VERSION> (<COMMIT>, <BUILD_DATE>, <go version>).
VERSION    ?= $(shell cat VERSION 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PKG        := github.com/perpetuaflow/api/app
LDFLAGS    := -s -w -X $(PKG).Version=$(VERSION) -X $(PKG).Commit=$(COMMIT) -X $(PKG).BuildDate=$(BUILD_DATE)
# The PostgreSQL the second test pass uses; `make test TEST_DATABASE_URL=`
# skips that pass.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
TEST_FLAGS ?= -count=1 -timeout 20m
# The static checker `make check` runs, pinned: `go run` fetches it from the
# module proxy, so nothing is installed by hand.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help run build test check test-sqlite test-postgres bench bench-jobs bench-plans bench-go load migrate clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-14s %s\n", $$1, $$2}'

run: ## run the server on the embedded SQLite (no other service needed)
	$(GO) run -ldflags "$(LDFLAGS)" . serve --role=all

build: ## build bin/perpetua (static, version stamped)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BINARY) .

migrate: ## apply the database migrations (DATABASE_URL)
	$(GO) run . migrate

test: check test-sqlite test-postgres ## gofmt, vet, staticcheck, the suite on SQLite, then on PostgreSQL with -race

check: ## gofmt, go vet and staticcheck
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

test-sqlite: ## the suite on SQLite
	@echo "== tests on SQLite =="
	TEST_DATABASE_URL= $(GO) test $(TEST_FLAGS) ./...

test-postgres: ## the suite on PostgreSQL with -race (creates the database named in TEST_DATABASE_URL when missing)
	@if [ -z "$(TEST_DATABASE_URL)" ]; then echo "== PostgreSQL pass skipped (TEST_DATABASE_URL is empty) =="; exit 0; fi; \
	if ! command -v gcc >/dev/null; then echo "the PostgreSQL pass runs with -race, which needs gcc (apt-get install gcc)"; exit 1; fi; \
	$(GO) run ./test/testkit/createdb '$(TEST_DATABASE_URL)' || exit 1; \
	echo "== tests on PostgreSQL ($(TEST_DATABASE_URL)) =="; \
	TEST_DATABASE_URL='$(TEST_DATABASE_URL)' $(GO) test $(TEST_FLAGS) -race ./...

# The PostgreSQL `make bench` and `make bench-jobs` create scratch databases on.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable

# The request hot path against pgbench on the same statements, and on SQLite
# against a Go loop over the same file (needs pgbench: postgresql-client).
bench: build ## the request hot path against pgbench, processes, streams, growth (README figures)
	$(GO) run ./test/bench -binary $(BINARY) -db '$(BENCH_DATABASE_URL)' $(BENCH_FLAGS) http

# Reminder lag and trivial jobs per second on PostgreSQL.
bench-jobs: build ## reminder lag and jobs per second on PostgreSQL
	$(GO) run ./test/bench -binary $(BINARY) -db '$(BENCH_DATABASE_URL)' $(BENCH_FLAGS) jobs

# The plan PostgreSQL chose for every statement the server makes, with
# 100,000 users and one with 20,000 rows in every list (docs/query-plans.md;
# reads the plans from the local PostgreSQL's log through auto_explain).
bench-plans: build ## the plan of every statement (docs/query-plans.md)
	$(GO) run ./test/bench -binary $(BINARY) -db '$(BENCH_DATABASE_URL)' $(BENCH_FLAGS) plans

# Go micro-benchmarks of the packages.
bench-go: ## Go micro-benchmarks
	TEST_DATABASE_URL= $(GO) test -run '^$$' -bench . -benchmem ./...

load: ## the load tool in test/load against a running server
	$(GO) run ./test/load $(LOAD_FLAGS)

clean: ## remove bin/
	rm -rf bin
