#!/usr/bin/env bash
# Configures and builds timetrail into build/<type>. Usage: scripts/build.sh [Release|Debug|...]
# [extra cmake args]. Prints the build directory on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
type=${1:-Release}; shift || true
dir="$root/build/${type,,}"
cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "$@" >&2
cmake --build "$dir" --parallel "$(nproc)" >&2
echo "$dir"
