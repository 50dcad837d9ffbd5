#!/usr/bin/env bash
# Runs every compiled test file (unit tests of each workspace, then the end-to-end suite)
# with tap, and ends with one summary line.
#
# Coverage floor (docs/development.md): the unit tests' coverage of their own workspace's
# src/ (scripts/coverage-map.mjs), over all workspaces together, must reach these
# percentages; below them, or with no coverage at all, the run fails.
LINES=78 BRANCHES=75 FUNCTIONS=78
COVERAGE_FLOOR=(--statements "$LINES" --lines "$LINES" --branches "$BRANCHES" --functions "$FUNCTIONS" --no-allow-incomplete-coverage --no-allow-empty-coverage)
set -uo pipefail
cd "$(dirname "$0")/.."
# tap bakes the plugin list of .taprc into node_modules when it first runs; on a fresh clone
# that happens while the first test processes start, which then load the plugin .taprc
# removes (@tapjs/typescript) and fail to import. Build the plugin set once, up front.
npx tap build >/dev/null || { echo "run-tests: tap build failed" >&2; exit 1; }
mapfile -t files < <(find packages connectors agent gateway test -path '*/node_modules' -prune -o -path '*/dist/*' -name '*.test.js' -print 2>/dev/null | sort)
if [ ${#files[@]} -eq 0 ]; then echo "run-tests: no compiled tests found (did the build run?)" >&2; exit 1; fi
echo "run-tests: ${#files[@]} test files"
out=$(mktemp)
NODE_OPTIONS="--enable-source-maps" npx tap "${COVERAGE_FLOOR[@]}" "${files[@]}" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
pass=$(grep -oE '^# \{ total: [0-9]+, pass: [0-9]+' "$out" | grep -oE 'pass: [0-9]+' | grep -oE '[0-9]+' | tail -1)
total=$(grep -oE '^# \{ total: [0-9]+' "$out" | grep -oE '[0-9]+' | tail -1)
pct() { grep -oE "^$1 *: [0-9.]+%" "$out" | grep -oE '[0-9.]+%' | tail -1; }
coverage="coverage of src/ by unit tests: lines $(pct Lines), branches $(pct Branches), functions $(pct Functions) (floor: lines $LINES%, branches $BRANCHES%, functions $FUNCTIONS%)"
if grep -qE '^# (ERROR: incomplete|No coverage generated)' "$out"; then coverage="$coverage: BELOW THE FLOOR"; fi
rm -f "$out"
echo "tests: ${pass:-0} passed, $(( ${total:-0} - ${pass:-0} )) failed; $coverage"
exit "$rc"
