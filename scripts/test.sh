#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs tap over test/, and ends with one
# line "N passed, N failed" (N counts assertions). Extra arguments go to tap (e.g. a file).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh || exit 1

out=$(mktemp)
trap 'rm -f "$out"' EXIT
npx tap -R tap "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}

summary=$(grep -E '^# \{ total: ' "$out" | tail -n 1)
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
pass=${pass:-0}
fail=${fail:-0}
# A non-zero exit with no counted failure (a crashed file, a timeout) still counts as one failure.
if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then fail=1; fi
echo "$pass passed, $fail failed"
exit "$rc"
