#!/usr/bin/env bash
# Runs each benchmark in test/bench: every one measures the gateway side by side with a
# direct connection in the same run and prints a JSON summary and a table.
set -euo pipefail
cd "$(dirname "$0")/.."
for b in test/dist/bench/*/bench.js; do
  echo "== ${b}"
  node "$b"
done
