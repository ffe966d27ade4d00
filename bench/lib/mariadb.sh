# Private MariaDB server for benchmarks: source this file (after bench/lib/postgres.sh, which
# provides bench_free_port), then
#
#   bench_mariadb_start "$workdir"  # install the system tables + start on a free 127.0.0.1 port
#   BENCH_MARIADB_PORT and BENCH_MARIADB_SOCKET are set; user root, no password, database bench
#   bench_mariadb_stop              # clean shutdown (also safe to call twice, or from a trap)
#
# Durable like PostgreSQL in the same run: innodb_flush_log_at_trx_commit=1, sync_binlog
# irrelevant (no binary log), innodb_buffer_pool_size 256M like PostgreSQL's shared_buffers.
# As root the server runs as the "mysql" user.

BENCH_MARIADB_DIR=""
BENCH_MARIADB_PORT=""
BENCH_MARIADB_SOCKET=""
BENCH_MARIADB_PID=""

bench_mariadb_start() {
  local workdir=$1 user_args=()
  if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
    echo "MariaDB server not found (scripts/install-deps.sh installs mariadb-server)" >&2
    return 1
  fi
  BENCH_MARIADB_DIR="$workdir/mariadb"
  mkdir -p "$BENCH_MARIADB_DIR/data"
  if [ "$(id -u)" -eq 0 ]; then
    chmod o+x "$workdir"
    chown -R mysql: "$BENCH_MARIADB_DIR"
    user_args=(--user=mysql)
  fi
  mariadb-install-db --no-defaults "${user_args[@]}" --datadir="$BENCH_MARIADB_DIR/data" \
      --auth-root-authentication-method=normal >"$BENCH_MARIADB_DIR/install.log" 2>&1 || {
    echo "mariadb-install-db failed:" >&2; tail -20 "$BENCH_MARIADB_DIR/install.log" >&2; return 1; }
  BENCH_MARIADB_PORT=$(bench_free_port) || return 1
  BENCH_MARIADB_SOCKET="$BENCH_MARIADB_DIR/mariadb.sock"
  /usr/sbin/mariadbd --no-defaults "${user_args[@]}" --datadir="$BENCH_MARIADB_DIR/data" \
      --bind-address=127.0.0.1 --port="$BENCH_MARIADB_PORT" --socket="$BENCH_MARIADB_SOCKET" \
      --pid-file="$BENCH_MARIADB_DIR/mariadbd.pid" --innodb-buffer-pool-size=256M \
      --innodb-flush-log-at-trx-commit=1 --skip-log-bin --max-connections=200 \
      >"$BENCH_MARIADB_DIR/server.log" 2>&1 &
  BENCH_MARIADB_PID=$!
  for _ in $(seq 1 120); do
    if mariadb --no-defaults -uroot --socket="$BENCH_MARIADB_SOCKET" -e 'SELECT 1' >/dev/null 2>&1; then
      mariadb --no-defaults -uroot --socket="$BENCH_MARIADB_SOCKET" -e 'CREATE DATABASE IF NOT EXISTS bench'
      export BENCH_MARIADB_PORT BENCH_MARIADB_SOCKET
      echo "MariaDB $(mariadb --no-defaults -uroot --socket="$BENCH_MARIADB_SOCKET" -N -e 'SELECT VERSION()') on 127.0.0.1:$BENCH_MARIADB_PORT, data in $BENCH_MARIADB_DIR/data" >&2
      return 0
    fi
    if ! kill -0 "$BENCH_MARIADB_PID" 2>/dev/null; then break; fi
    sleep 0.5
  done
  echo "MariaDB did not start:" >&2; tail -20 "$BENCH_MARIADB_DIR/server.log" >&2
  return 1
}

bench_mariadb_stop() {
  if [ -n "$BENCH_MARIADB_PID" ] && kill -0 "$BENCH_MARIADB_PID" 2>/dev/null; then
    kill -TERM "$BENCH_MARIADB_PID" 2>/dev/null || true
    wait "$BENCH_MARIADB_PID" 2>/dev/null || true
  fi
  BENCH_MARIADB_PID=""
}
