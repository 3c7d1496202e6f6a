#!/usr/bin/env bash
# The README's demo: installs what is missing (npm deps, Debian's etcd), builds, runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec node dist/devstack/demo.js "$@"
