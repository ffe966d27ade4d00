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
  # Debian's nodejs comes without npm; a nodejs that bundles npm conflicts with the npm package,
  # so it is installed only when the command is missing.
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "install-node-deps: installing the Debian package npm"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends npm
fi
echo "install-node-deps: npm ci in clients/node"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" > "$stamp"
