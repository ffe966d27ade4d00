# Private PostgreSQL cluster for benchmarks: source this file, then
#
#   bench_pg_start "$workdir"     # initdb + start on a free 127.0.0.1 port under $workdir/pg
#   psql "$BENCH_PG_CONNINFO" ...  # BENCH_PG_PORT and BENCH_PG_CONNINFO are set
#   bench_pg_stop                 # fast shutdown (also safe to call twice, or from a trap)
#
# The server is tuned like a normal durable installation: fsync and synchronous_commit on,
# full_page_writes on, shared_buffers 256MB. As root, initdb and postgres run as the "postgres"
# user via runuser, because PostgreSQL refuses to run as root.
# Extra postgresql.conf lines can be passed in BENCH_PG_EXTRA_CONF (newline separated).

BENCH_PG_BIN=${BENCH_PG_BIN:-/usr/lib/postgresql/15/bin}
BENCH_PG_DIR=""
BENCH_PG_PORT=""
BENCH_PG_CONNINFO=""

_bench_pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Prints a TCP port on 127.0.0.1 that nothing listens on right now.
bench_free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$(( 20000 + RANDOM % 30000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "bench_free_port: no free port found" >&2
  return 1
}

bench_pg_start() {
  local workdir=$1
  if [ ! -x "$BENCH_PG_BIN/initdb" ]; then
    echo "PostgreSQL 15 server not found in $BENCH_PG_BIN (scripts/install-deps.sh installs it)" >&2
    return 1
  fi
  BENCH_PG_DIR="$workdir/pg"
  mkdir -p "$BENCH_PG_DIR"
  if [ "$(id -u)" -eq 0 ]; then
    # The postgres user must reach the directory through every parent.
    chmod o+x "$workdir"
    chown postgres: "$BENCH_PG_DIR"
  fi
  _bench_pg_as_owner "$BENCH_PG_BIN/initdb" -D "$BENCH_PG_DIR/data" -U postgres \
      --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$BENCH_PG_DIR/initdb.log" 2>&1 || {
    echo "initdb failed:" >&2; tail -20 "$BENCH_PG_DIR/initdb.log" >&2; return 1; }
  BENCH_PG_PORT=$(bench_free_port) || return 1
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $BENCH_PG_PORT"
    echo "unix_socket_directories = '$BENCH_PG_DIR'"
    echo "fsync = on"
    echo "synchronous_commit = on"
    echo "full_page_writes = on"
    echo "shared_buffers = 256MB"
    echo "max_connections = 200"
    echo "max_wal_size = 4GB"
    echo "logging_collector = off"
    if [ -n "${BENCH_PG_EXTRA_CONF:-}" ]; then printf '%s\n' "$BENCH_PG_EXTRA_CONF"; fi
  } | _bench_pg_as_owner tee -a "$BENCH_PG_DIR/data/postgresql.conf" >/dev/null
  _bench_pg_as_owner "$BENCH_PG_BIN/pg_ctl" -D "$BENCH_PG_DIR/data" -l "$BENCH_PG_DIR/server.log" \
      -w -t 60 start >/dev/null || {
    echo "PostgreSQL did not start:" >&2; tail -20 "$BENCH_PG_DIR/server.log" >&2; return 1; }
  BENCH_PG_CONNINFO="host=127.0.0.1 port=$BENCH_PG_PORT user=postgres dbname=postgres"
  export BENCH_PG_PORT BENCH_PG_CONNINFO
  echo "PostgreSQL $("$BENCH_PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$BENCH_PG_PORT, data in $BENCH_PG_DIR/data" >&2
}

bench_pg_stop() {
  if [ -n "$BENCH_PG_DIR" ] && [ -f "$BENCH_PG_DIR/data/postmaster.pid" ]; then
    _bench_pg_as_owner "$BENCH_PG_BIN/pg_ctl" -D "$BENCH_PG_DIR/data" -m fast -w -t 60 stop \
        >/dev/null 2>&1 || true
  fi
}
