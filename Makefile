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

.PHONY: run build test check test-sqlite test-postgres bench load migrate clean

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

test-sqlite:
	@echo "== tests on SQLite =="
	TEST_DATABASE_URL= $(GO) test $(TEST_FLAGS) ./...

test-postgres:
	@if [ -z "$(TEST_DATABASE_URL)" ]; then echo "== PostgreSQL pass skipped (TEST_DATABASE_URL is empty) =="; exit 0; fi; \
	echo "== tests on PostgreSQL ($(TEST_DATABASE_URL)) =="; \
	TEST_DATABASE_URL='$(TEST_DATABASE_URL)' $(GO) test $(TEST_FLAGS) -race ./...

bench:
	TEST_DATABASE_URL= $(GO) test -run '^$$' -bench . -benchmem ./...

load:
	$(GO) run ./test/load $(LOAD_FLAGS)

clean:
	rm -rf bin
