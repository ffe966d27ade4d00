#!/usr/bin/env bash
# Configures and builds timetrail into build/<type>. Usage: scripts/build.sh [Release|Debug|...]
# [extra cmake args]. Prints the build directory on its last line. BUILD_TARGETS (e.g.
# "timetrail_cli", the timetrail command) builds only those targets; empty (the default)
# builds everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
type=${1:-Release}; shift || true
dir="$root/build/${type,,}"
cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "$@" >&2
targets=()
for t in ${BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$dir" --parallel "$(nproc)" "${targets[@]}" >&2
echo "$dir"
