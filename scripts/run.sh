#!/usr/bin/env bash
# Installs what is missing, builds timetrail in release mode and runs it on the embedded default
# (RocksDB in ./timetrail-data). Arguments are passed to `timetrail serve`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
dir=$("$root/scripts/build.sh" Release)
if [ -x "$dir/src/cli/timetrail" ]; then
  exec "$dir/src/cli/timetrail" serve "$@"
fi
exec "$dir/examples/quickstart" "${1:-./timetrail-data}"
