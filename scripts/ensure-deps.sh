#!/usr/bin/env bash
# Installs what the demo and the tests need when it is missing: npm dependencies, a build of src/,
# Debian's etcd server and client, and promtool (Debian's prometheus). Safe to run again; does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "etcd is missing: run 'sudo apt-get install -y etcd-server etcd-client'" >&2
    exit 1
  fi
  echo "installing etcd-server and etcd-client with apt-get" >&2
  (apt-get install -y etcd-server etcd-client >/dev/null 2>&1) ||
    (apt-get update >/dev/null && apt-get install -y etcd-server etcd-client >/dev/null)
fi

# promtool (Debian's prometheus package) checks the alert rules and the /metrics output in tests.
# Only the binary is used: a Prometheus daemon the package may have started is stopped again.
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "promtool is missing: run 'sudo apt-get install -y prometheus'" >&2
    exit 1
  fi
  echo "installing prometheus (for promtool) with apt-get" >&2
  (DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1) ||
    (apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null)
  (command -v systemctl >/dev/null 2>&1 && systemctl disable --now prometheus >/dev/null 2>&1) || true
  (command -v service >/dev/null 2>&1 && service prometheus stop >/dev/null 2>&1) || true
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

npm run -s build
