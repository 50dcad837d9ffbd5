# Gatehouse — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CONFIG ?= gatehouse.example.yaml

.PHONY: help deps system-deps build run test bench lint format clean

help:
	@echo "make run    install, build and start the gateway on $(CONFIG)"
	@echo "make test   install what the tests need, build, make lint, run every test (coverage floor: docs/development.md)"
	@echo "make bench  run the benchmarks (gateway side by side with direct connections)"
	@echo "make lint   type-check, lint (typescript-eslint, type-aware) and check formatting (prettier)"
	@echo "make format apply prettier, then eslint --fix"

# npm ci only when the lock file changed since the last install.
node_modules/.gatehouse-installed: package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.gatehouse-installed

# Debian packages and local services the tests talk to (we are root on CI machines).
system-deps:
	@scripts/ensure-system-deps.sh test

build: deps
	npx tsc -b

# What prettier formats (docs, YAML and JSON keep their hand layout).
FORMATTED := '**/*.{ts,mts,cts,js,mjs,cjs}'

# Strict: any type error, lint error or warning, or unformatted file fails it (make test runs it first).
lint: deps
	npx tsc -b
	npx eslint --max-warnings 0 .
	npx prettier --check $(FORMATTED)
	@echo "lint: no type errors, lint findings or formatting differences"

format: deps
	npx prettier --write $(FORMATTED)
	npx eslint --fix .

run: build
	node gateway/bin/gatehouse.js start -c $(CONFIG)

test: system-deps build lint
	@scripts/run-tests.sh

# One run, one table: every connector with its baselines, strict group commit, a 1M-row SELECT
# and SSH; writes docs/benchmarks.md. Knobs (BENCH_SECONDS, BENCH_ONLY, …): test/bench/lib/config.ts.
bench: build
	@scripts/ensure-system-deps.sh bench
	@scripts/run-bench.sh

clean:
	find . -name dist -type d -prune -not -path './node_modules/*' -exec rm -rf {} +
	find . -name '*.tsbuildinfo' -not -path './node_modules/*' -delete

# The demo's development token (static tokens are for development only; see docs/identity.md).
export GATEHOUSE_DEV_TOKEN ?= gatehouse-dev-token-change-me
export GATEHOUSE_REVIEWER_TOKEN ?= gatehouse-reviewer-token-change-me
