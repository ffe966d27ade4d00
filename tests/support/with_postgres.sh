#!/usr/bin/env bash
# Runs a command beside a private PostgreSQL cluster, for the tests written in other languages
# (clients/*): initdb under a temporary directory, started on a free 127.0.0.1 port with
# wal_level=logical (so the capture can read it), stopped and removed when the command ends.
#
#   tests/support/with_postgres.sh python3 -m unittest ...
#
# The command sees TIMETRAIL_PG_URL (postgresql://postgres@127.0.0.1:PORT/postgres) and libpq's
# PGHOST, PGPORT, PGUSER and PGDATABASE. As root, the cluster runs as the "postgres" user.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../bench/lib/postgres.sh
source "$here/../../bench/lib/postgres.sh"

workdir=$(mktemp -d "${TMPDIR:-/tmp}/timetrail-pg-XXXXXX")
cleanup() {
  bench_pg_stop
  rm -rf "$workdir"
}
trap cleanup EXIT
# A free port is chosen before the server binds it, so a test starting beside another may lose
# the port to it: start again on another one (and say why, on stderr, when it keeps failing).
export BENCH_PG_EXTRA_CONF=$'wal_level = logical\nmax_replication_slots = 20\nmax_wal_senders = 20'
for attempt in 1 2 3; do
  if bench_pg_start "$workdir" 2>"$workdir/start.err"; then break; fi
  echo "with_postgres: PostgreSQL did not start (attempt $attempt):" >&2
  cat "$workdir/start.err" >&2
  bench_pg_stop
  [ "$attempt" = 3 ] && exit 1
  rm -rf "$workdir/pg"
done
export TIMETRAIL_PG_URL="postgresql://postgres@127.0.0.1:$BENCH_PG_PORT/postgres"
export PGHOST=127.0.0.1 PGPORT=$BENCH_PG_PORT PGUSER=postgres PGDATABASE=postgres
"$@"
