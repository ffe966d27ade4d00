# Sourced by the shell tests that need a PostgreSQL primary with a streaming standby: two
# private clusters on loopback, made with bench/lib/postgres.sh (source it first) and
# pg_basebackup.
#
#   standby_primary_start "$work" [postgresql.conf lines]   # BENCH_PG_PORT, BENCH_PG_DIR...
#   standby_start "$work/standby"                           # sets STANDBY_DIR, STANDBY_PORT
#   psql -h 127.0.0.1 -p "$STANDBY_PORT" -U postgres ...
#   standby_stop                                            # as by a crash; safe to call twice
#   bench_pg_stop
#   standby_cleanup "$work"    # at exit: kills serve.sh's server, stops both, removes $work
#
# The standby is a hot standby (it answers reads), asynchronous unless the primary's extra
# lines name it in synchronous_standby_names. On failure a function prints why and returns 1.

STANDBY_DIR=""
STANDBY_PORT=""

# Starts the primary with what streaming replication needs, plus the postgresql.conf lines
# given, and lets replication connections in from loopback.
standby_primary_start() {  # work directory, extra postgresql.conf lines (newline separated)
  local work=$1 extra=${2:-}
  BENCH_PG_EXTRA_CONF=$'wal_level = replica\nmax_wal_senders = 10\nwal_keep_size = 256MB'
  if [ -n "$extra" ]; then BENCH_PG_EXTRA_CONF+=$'\n'"$extra"; fi
  export BENCH_PG_EXTRA_CONF
  bench_pg_start "$work" 2>"$work/primary-start.err" || { cat "$work/primary-start.err" >&2; return 1; }
  echo "host replication all 127.0.0.1/32 trust" |
    _bench_pg_as_owner tee -a "$BENCH_PG_DIR/data/pg_hba.conf" >/dev/null
  _bench_pg_as_owner "$BENCH_PG_BIN/pg_ctl" -D "$BENCH_PG_DIR/data" reload >/dev/null
}

# Copies the running primary into DIR/data with pg_basebackup (set up to follow it) and starts
# it on a free port.
standby_start() {  # directory
  STANDBY_DIR=$1
  mkdir -p "$STANDBY_DIR"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$STANDBY_DIR"; fi
  _bench_pg_as_owner "$BENCH_PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres \
    -D "$STANDBY_DIR/data" -R -X stream >"$STANDBY_DIR/basebackup.log" 2>&1 || {
    cat "$STANDBY_DIR/basebackup.log" >&2; echo "pg_basebackup failed" >&2; return 1; }
  _bench_pg_as_owner cp "$STANDBY_DIR/data/postgresql.conf" "$STANDBY_DIR/postgresql.conf.base"
  # A port found free may be taken by a test starting beside this one: try another.
  local attempt
  for attempt in 1 2 3; do
    STANDBY_PORT=$(bench_free_port) || return 1
    _bench_pg_as_owner cp "$STANDBY_DIR/postgresql.conf.base" "$STANDBY_DIR/data/postgresql.conf"
    printf "port = %s\nunix_socket_directories = '%s'\nhot_standby = on\nsynchronous_standby_names = ''\n" \
      "$STANDBY_PORT" "$STANDBY_DIR" |
      _bench_pg_as_owner tee -a "$STANDBY_DIR/data/postgresql.conf" >/dev/null
    if standby_restart; then return 0; fi
    tail -5 "$STANDBY_DIR/server.log" >&2
  done
  echo "the standby did not start" >&2
  return 1
}

# Starts the standby made by standby_start again, on the same port, after standby_stop.
standby_restart() {
  _bench_pg_as_owner "$BENCH_PG_BIN/pg_ctl" -D "$STANDBY_DIR/data" -l "$STANDBY_DIR/server.log" \
    -w -t 60 start >/dev/null
}

standby_stop() {
  if [ -n "$STANDBY_DIR" ] && [ -f "$STANDBY_DIR/data/postmaster.pid" ]; then
    _bench_pg_as_owner "$BENCH_PG_BIN/pg_ctl" -D "$STANDBY_DIR/data" -m immediate -w stop \
      >/dev/null 2>&1 || true
  fi
}

# For a test's exit trap: kills the server tests/support/serve.sh started (if any), stops the
# standby and the primary, and removes the test's work directory.
standby_cleanup() {  # work directory
  if [ -n "${serve_pid:-}" ]; then kill -9 "$serve_pid" 2>/dev/null || true; fi
  standby_stop
  bench_pg_stop
  rm -rf "$1"
}
