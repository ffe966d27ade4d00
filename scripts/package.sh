#!/usr/bin/env bash
# Builds the Debian package of timetrail (build/release/timetrail_<version>_amd64.deb): installs
# what is missing, builds the timetrail command and library in release mode, and runs CPack.
# Install it with: dpkg -i build/release/timetrail_*.deb (docs/operations.md, "The Debian package").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
dir=$(BUILD_TARGETS="timetrail_cli timetrail_installed" "$root/scripts/build.sh" Release)
(cd "$dir" && cpack -G DEB >&2)
ls "$dir"/timetrail_*_amd64.deb
