#!/usr/bin/env bash
# Builds the Debian package with CPack, installs it with dpkg, starts the service as its
# systemd unit says (ExecStart as the unit's User), appends an event over HTTP and reads it
# back, then purges the package.
#   deb_test.sh BUILD_DIR
# Needs root (dpkg). Where systemd is the init system, the package's postinst enables and starts
# timetrail.service itself; in a container without it (CI), the test runs the unit's command
# line the way systemd would.
set -euo pipefail
build=$(cd "$1" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "deb_test: needs root to install the package with dpkg" >&2; exit 1; }
if dpkg -s timetrail >/dev/null 2>&1 || [ -e /var/lib/timetrail ] || getent passwd timetrail >/dev/null; then
  echo "deb_test: this machine already has a timetrail package, /var/lib/timetrail or a user" \
       "timetrail; not touching them" >&2
  exit 1
fi
work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  dpkg --purge timetrail >/dev/null 2>&1 || true
  rm -rf /var/lib/timetrail
  getent passwd timetrail >/dev/null && deluser --system timetrail >/dev/null 2>&1 || true
  getent group timetrail >/dev/null && delgroup --system timetrail >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "deb_test: $*" >&2; exit 1; }

(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/pkg") >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack failed"; }
deb=$(ls "$work"/pkg/timetrail_*_amd64.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { cat "$work/cpack.log" >&2; fail "no .deb was made"; }
info=$(dpkg-deb -I "$deb")
grep -q "Depends: .*librocksdb" <<<"$info" || fail "the package does not depend on RocksDB's library"

dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i failed"; }
[ -x /usr/bin/timetrail ] || fail "/usr/bin/timetrail not installed"
[ -f /etc/timetrail/timetrail.conf ] || fail "the default configuration is not installed"
grep -qx /etc/timetrail/timetrail.conf /var/lib/dpkg/info/timetrail.conffiles ||
  fail "the configuration is not a conffile"
unit=/lib/systemd/system/timetrail.service
[ -f "$unit" ] || fail "the systemd unit is not installed"
getent passwd timetrail >/dev/null || fail "postinst did not create the user timetrail"
[ "$(stat -c %U /var/lib/timetrail)" = timetrail ] || fail "/var/lib/timetrail is not owned by timetrail"

# Start the service as the unit describes it; a free port instead of the configured 7070
# (flags win over the configuration file).
user=$(sed -n 's/^User=//p' "$unit")
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
[ "$user" = timetrail ] && [ -n "$exec_start" ] || fail "the unit has no User or ExecStart"
# setpriv executes the command itself (as systemd does), so the signal reaches the server.
# shellcheck disable=SC2086
setpriv --reuid "$user" --regid "$user" --init-groups -- $exec_start --listen 127.0.0.1:0 \
    >"$work/out" 2>"$work/err" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^listening on //p' "$work/out" 2>/dev/null | head -1 || true)
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/err" >&2; fail "the service did not start"; }
curl -sf -X POST "$url/v1/streams/orders-1" -H 'content-type: application/json' \
     -d '{"events":[{"type":"$put","data":{"status":"new"}}]}' >"$work/append" ||
  fail "append failed"
grep -q '"position":1' "$work/append" || fail "unexpected append answer: $(cat "$work/append")"
curl -sf "$url/v1/streams/orders-1" >"$work/read" || fail "read failed"
grep -q '"status":"new"' "$work/read" || fail "the event was not read back: $(cat "$work/read")"
kill -TERM "$server_pid"
wait "$server_pid" || fail "the service did not stop cleanly on SIGTERM"
server_pid=""
# The store is in the unit's data directory, owned by the service's user.
[ "$(stat -c %U /var/lib/timetrail/CURRENT)" = timetrail ] || fail "the store is not in /var/lib/timetrail"

dpkg --purge timetrail >"$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; fail "dpkg --purge failed"; }
[ ! -e /usr/bin/timetrail ] || fail "/usr/bin/timetrail left after purge"
[ -d /var/lib/timetrail ] || fail "purge removed the data directory (it must keep the events)"
echo "deb_test: built, installed, started, appended, read back and purged the package"
