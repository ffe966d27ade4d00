#!/usr/bin/env bash
# Installs the Debian packages listed in scripts/debian-packages.txt (with --bench, also those in
# scripts/bench-packages.txt) that are not installed yet. Safe to run again: with everything
# present it only checks. Needs root (or sudo) for apt-get. Then the npm packages of some tests
# (scripts/install-npm-deps.sh: npm ci from their lock files).
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
# The npm packages of some tests (scripts/install-npm-deps.sh). Without the npm registry
# everything else still builds and runs; only those tests fail, and say how to install them.
if ! "$here/install-npm-deps.sh"; then
  echo "install-deps: could not install the tests' npm packages; the tests node_pg_context," \
       "ui_browser and ui_capture will fail until scripts/install-npm-deps.sh succeeds" >&2
fi
