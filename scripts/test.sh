#!/usr/bin/env bash
# Installs what is missing, builds everything with warnings as errors, and runs the whole test
# suite with CTest. Extra arguments go to ctest (e.g. -R crash).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
dir=$("$root/scripts/build.sh" RelWithDebInfo -DTIMETRAIL_WERROR=ON)
cd "$dir"
ctest --output-on-failure --parallel "$(nproc)" --timeout 600 "$@"
