#!/usr/bin/env bash
# `make bench`: one driver runs every connector's benchmark side by side with its baselines
# (direct, a bare Node relay, pgbouncer / nginx, Gatehouse passthrough and full), the strict
# group-commit runs, the large-result SELECT and SSH; prints the JSON summary and one table,
# and writes docs/benchmarks.md and docs/benchmarks-latency.svg. Knobs (BENCH_SECONDS,
# BENCH_ONLY, …): test/bench/lib/config.ts. The older single-protocol benches
# (test/dist/bench/*/bench.js, postgres/cpu.js) still run on their own.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node test/dist/bench/run.js
