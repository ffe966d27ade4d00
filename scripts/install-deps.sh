#!/usr/bin/env bash
# Installs the Debian packages listed in scripts/debian-packages.txt (with --bench, also those in
# scripts/bench-packages.txt) that are not installed yet. Safe to run again: with everything
# present it only checks. Needs root (or sudo) for apt-get.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lists=("$here/debian-packages.txt")
for arg in "$@"; do
  case "$arg" in
    --bench) lists+=("$here/bench-packages.txt") ;;
    *) echo "install-deps: unknown argument '$arg' (only --bench)" >&2; exit 2 ;;
  esac
done

missing=()
while read -r pkg; do
  pkg=${pkg%%#*}; pkg=${pkg//[[:space:]]/}
  [ -n "$pkg" ] || continue
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done < <(cat "${lists[@]}")

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all listed packages are installed"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The web UI's browser tests drive chromium with one npm package (tests/ui/package-lock.json).
# Only those tests need it: without the npm registry, everything else still builds and runs.
if ! "$here/install-ui-test-deps.sh"; then
  echo "install-deps: could not install tests/ui's npm packages; the ui_browser and ui_capture" \
       "tests will fail until scripts/install-ui-test-deps.sh succeeds" >&2
fi

