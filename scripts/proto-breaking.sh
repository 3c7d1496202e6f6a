#!/usr/bin/env bash
# Fails when proto/ breaks wire compatibility with the released contract: `buf breaking` against
# the commit named in proto/BASELINE (the last released version of the protos). Move the baseline
# forward only when a breaking change is intended and announced.
set -euo pipefail
cd "$(dirname "$0")/.."
base=$(tr -d '[:space:]' < proto/BASELINE)
if ! git cat-file -e "$base^{commit}" 2>/dev/null; then
  echo "proto baseline $base is not in this clone (shallow clone?): fetch more history" >&2
  exit 1
fi
npx buf breaking --against ".git#ref=$base,subdir=proto" proto 2>&1 || {
  echo "proto/ breaks compatibility with $base" >&2
  exit 1
}
echo "proto/ is compatible with $base"
