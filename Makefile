# Perpetua Flow API. `make run` starts the server on the embedded SQLite;
# `make test` runs the whole suite on SQLite and on PostgreSQL.

GO        ?= go
BINARY    ?= bin/perpetua
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/perpetuaflow/api/app.Version=$(VERSION)
# The PostgreSQL the second test pass uses; `make test TEST_DATABASE_URL=`
# skips that pass.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
TEST_FLAGS ?= -count=1 -timeout 20m
# The static checker `make check` runs, pinned: `go run` fetches it from the
# module proxy, so nothing is installed by hand.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: run build test check test-sqlite test-postgres bench bench-jobs bench-plans bench-go load migrate clean

run:
	$(GO) run . serve --role=all

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BINARY) .

migrate:
	$(GO) run . migrate

test: check test-sqlite test-postgres

check:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

test-sqlite:
	@echo "== tests on SQLite =="
	TEST_DATABASE_URL= $(GO) test $(TEST_FLAGS) ./...

test-postgres:
	@if [ -z "$(TEST_DATABASE_URL)" ]; then echo "== PostgreSQL pass skipped (TEST_DATABASE_URL is empty) =="; exit 0; fi; \
	echo "== tests on PostgreSQL ($(TEST_DATABASE_URL)) =="; \
	TEST_DATABASE_URL='$(TEST_DATABASE_URL)' $(GO) test $(TEST_FLAGS) -race ./...

# The PostgreSQL `make bench` and `make bench-jobs` create scratch databases on.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable

# The request hot path against pgbench on the same statements, and on SQLite
# against a Go loop over the same file (needs pgbench: postgresql-client).
bench: build
	$(GO) run ./test/bench -binary $(BINARY) -db '$(BENCH_DATABASE_URL)' $(BENCH_FLAGS) http

# Reminder lag and trivial jobs per second on PostgreSQL.
bench-jobs: build
	$(GO) run ./test/bench -binary $(BINARY) -db '$(BENCH_DATABASE_URL)' $(BENCH_FLAGS) jobs

# The plan PostgreSQL chose for every statement the server makes, with
# 100,000 users and one with 20,000 rows in every list (docs/query-plans.md;
# reads the plans from the local PostgreSQL's log through auto_explain).
bench-plans: build
	$(GO) run ./test/bench -binary $(BINARY) -db '$(BENCH_DATABASE_URL)' $(BENCH_FLAGS) plans

# Go micro-benchmarks of the packages.
bench-go:
	TEST_DATABASE_URL= $(GO) test -run '^$$' -bench . -benchmem ./...

load:
	$(GO) run ./test/load $(LOAD_FLAGS)

clean:
	rm -rf bin
