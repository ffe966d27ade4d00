#!/usr/bin/env bash
# Installs the npm packages of the web UI's browser tests (tests/ui: playwright-core, which
# drives Debian's chromium) exactly as tests/ui/package-lock.json pins them. Safe to run again:
# it does nothing while tests/ui/node_modules matches the lock file. The UI itself needs no npm
# package: its files (ui/) are compiled into the timetrail binary as they are.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/tests/ui"
stamp="$dir/node_modules/.installed-from-lock"
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "install-ui-test-deps: tests/ui/node_modules matches package-lock.json"
  exit 0
fi
if ! command -v npm >/dev/null; then
  # Debian's nodejs comes without npm (NodeSource's includes it, and conflicts with Debian's npm).
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "install-ui-test-deps: installing Debian's npm"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm
fi
echo "install-ui-test-deps: npm ci in tests/ui"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" > "$stamp"
