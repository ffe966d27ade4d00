#!/usr/bin/env bash
# Installs what is missing, builds the timetrail command in release mode (only it: not the tests
# or benchmarks) and runs it on the embedded default (RocksDB in ./timetrail-data). Arguments are
# passed to `timetrail serve`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
dir=$(BUILD_TARGETS=timetrail_cli "$root/scripts/build.sh" Release)
exec "$dir/src/cli/timetrail" serve "$@"
