#!/usr/bin/env bash
# Installs the Node client's development packages (node-postgres, Express: for its context
# example and tests) into clients/node/node_modules from the committed package-lock.json with
# `npm ci`. Safe to run again: when node_modules was installed from the same lock file it only
# checks. Nothing else is fetched at test time.
set -euo pipefail
dir=$(cd "$(dirname "$0")/../clients/node" && pwd)
stamp="$dir/node_modules/.timetrail-lock.sha256"
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "install-node-deps: clients/node/node_modules is up to date"
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "install-node-deps: npm is missing (scripts/debian-packages.txt lists it)" >&2
  exit 1
fi
echo "install-node-deps: npm ci in clients/node"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" > "$stamp"
