#!/usr/bin/env bash
# Installs the npm packages the tests use, each folder exactly as its committed package-lock.json
# pins them (`npm ci`): clients/node (node-postgres and Express, for the Node client's context
# example and tests) and tests/ui (playwright-core, which drives Debian's chromium in the web
# UI's browser tests). Neither the timetrail binary nor its web UI needs an npm package. Safe to
# run again: a folder whose node_modules was installed from the same lock file is only checked.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
for rel in clients/node tests/ui; do
  dir="$root/$rel"
  stamp="$dir/node_modules/.installed-from-lock"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "install-npm-deps: $rel/node_modules matches its package-lock.json"
    continue
  fi
  if ! command -v npm >/dev/null; then
    # Debian's nodejs comes without npm; a nodejs that bundles npm (NodeSource's) conflicts with
    # Debian's npm package, so it is installed only when the command is missing.
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "install-npm-deps: installing Debian's npm"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends npm
  fi
  echo "install-npm-deps: npm ci in $rel"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
done
