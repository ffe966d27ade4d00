#!/usr/bin/env bash
# A store kept in PostgreSQL, end to end with the real binary (run under
# tests/support/with_postgres.sh, which sets TIMETRAIL_PG_URL): `serve --store` appends and
# reads, two writing nodes on one store, direct commands with --store beside the server, a
# kill -9 and a restart that keeps every acknowledged event, and clear errors for bad input.
#
#   tests/support/with_postgres.sh tests/cli/postgres_store_test.sh path/to/timetrail
set -euo pipefail
tt=$1
url=$TIMETRAIL_PG_URL
source "$(dirname "$0")/../support/serve.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/timetrail-pgstore-XXXXXX")
server_pid=""
second_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true
  [ -n "$second_pid" ] && kill -9 "$second_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_contains() {  # file, text
  grep -qF -- "$2" "$1" || { echo "--- $1:" >&2; cat "$1" >&2; fail "expected '$2' in $1"; }
}

start_server() {  # log prefix; sets server_pid and base
  serve_start "$tt" "$1" --store "$url" --store-schema shop_events --auth off
  server_pid=$serve_pid
  base=$serve_url
}

echo "1. serve --store: appends are acknowledged and read back"
start_server "$work/serve"
expect_contains "$work/serve.err" "PostgreSQL store 'shop_events' at postgresql://"
for i in 0 1 2; do
  curl -sf -X POST "$base/v1/streams/order-42" -H 'Content-Type: application/json' \
    -d "{\"expected_revision\": $([ $i = 0 ] && echo '"no_stream"' || echo $((i - 1))), \"events\": [{\"type\": \"\$patch\", \"data\": {\"step\": $i}, \"metadata\": {\"actor\": \"alice\"}}]}" \
    >"$work/append-$i.json" || fail "append $i"
done
curl -sf "$base/v1/entities/order-42" >"$work/entity.json"
expect_contains "$work/entity.json" '"step":2'
# The rows are in the schema's tables.
rows=$(psql "$url" -qAtc "SELECT count(*) FROM shop_events.log")
[ "$rows" = 3 ] || fail "expected 3 rows in shop_events.log, found $rows"
# A conflict is refused and changes nothing.
code=$(curl -s -o "$work/conflict.json" -w '%{http_code}' -X POST "$base/v1/streams/order-42" \
  -H 'Content-Type: application/json' -d '{"expected_revision": 0, "events": [{"type": "x"}]}')
[ "$code" = 409 ] || fail "a stale expected revision gave HTTP $code"

echo "2. several writing processes per store"
first_pid=$server_pid first=$base
start_server "$work/second"  # a second node on the same store
second_pid=$server_pid second=$base
server_pid=$first_pid base=$first
# An append on the second node is checked against the first one's events, and read on the first.
code=$(curl -s -o "$work/second-stale.json" -w '%{http_code}' -X POST "$second/v1/streams/order-42" \
  -H 'Content-Type: application/json' -d '{"expected_revision": 1, "events": [{"type": "x"}]}')
[ "$code" = 409 ] || fail "a stale expected revision on the second node gave HTTP $code"
curl -sf -X POST "$second/v1/streams/order-42" -H 'Content-Type: application/json' \
  -d '{"expected_revision": 2, "events": [{"type": "$patch", "data": {"step": 3}}]}' \
  >"$work/second-append.json" || fail "append on the second node"
expect_contains "$work/second-append.json" '"position":4'
curl -sf "$base/v1/entities/order-42?min_position=4&timeout_ms=30000" >"$work/first-read.json" ||
  fail "the first node did not see the second node's append"
expect_contains "$work/first-read.json" '"step":3'
# A command that writes works beside both servers too.
"$tt" append order-42 -t note --store "$url" --store-schema shop_events >"$work/append.out" 2>&1 ||
  { cat "$work/append.out" >&2; fail "a direct append beside the servers"; }
curl -sf "$base/v1/streams/order-42/info?min_position=5&timeout_ms=30000" >"$work/info.json" ||
  fail "the first node did not see the direct append"
expect_contains "$work/info.json" '"revision":4'
kill "$second_pid"
wait "$second_pid" 2>/dev/null || true

echo "3. direct reads beside the server"
"$tt" read order-42 --store "$url" --store-schema shop_events --json >"$work/read.json"
expect_contains "$work/read.json" '"revision":2'
"$tt" verify --store "$url" --store-schema shop_events >"$work/verify.out" 2>&1 ||
  { cat "$work/verify.out" >&2; fail "verify beside the server"; }

echo "4. kill -9 and restart: every acknowledged event is there, and appends go on"
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""
start_server "$work/serve"
curl -sf "$base/v1/streams/order-42" >"$work/after.json"
for i in 0 1 2 3; do expect_contains "$work/after.json" "\"step\": $i"; done
curl -sf -X POST "$base/v1/streams/order-42" -H 'Content-Type: application/json' \
  -d '{"expected_revision": 4, "events": [{"type": "$patch", "data": {"step": 4}}]}' \
  >"$work/append-3.json" || fail "append after the restart"
# Positions 1-5 are order-42's, 6 the verify above (a writing node now, so it is recorded in
# $audit).
expect_contains "$work/append-3.json" '"first_position":7'
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""
"$tt" verify --store "$url" --store-schema shop_events >"$work/verify2.out" 2>&1 ||
  { cat "$work/verify2.out" >&2; fail "verify after the restart"; }

echo "5. timetrail capture --store records a database's changes into a store kept in PostgreSQL"
psql "$url" -qc "CREATE TABLE orders (id int PRIMARY KEY, status text)"
"$tt" capture "$url" --store "$url" --store-schema audit --slot audit --publication audit \
  --progress-seconds 0.2 >"$work/capture.out" 2>"$work/capture.err" &
capture_pid=$!
for _ in $(seq 1 100); do
  grep -q "Ctrl-C stops" "$work/capture.err" 2>/dev/null && break
  kill -0 "$capture_pid" 2>/dev/null || { cat "$work/capture.err" >&2; fail "capture exited"; }
  sleep 0.1
done
psql "$url" -qc "INSERT INTO orders VALUES (42, 'new'); UPDATE orders SET status = 'paid' WHERE id = 42"
found=""
for _ in $(seq 1 100); do
  if "$tt" read public.orders/42 --store "$url" --store-schema audit --json >"$work/captured.json" 2>/dev/null &&
     grep -q '"revision":1' "$work/captured.json"; then
    found=yes
    break
  fi
  sleep 0.1
done
kill "$capture_pid"
wait "$capture_pid" 2>/dev/null || true
[ -n "$found" ] || { cat "$work/capture.err" >&2; fail "the capture did not record order 42's two changes"; }
expect_contains "$work/captured.json" '"status":"paid"'
# The store's own tables are in the publication (FOR ALL TABLES) but never recorded: their
# changes would come back without end.
"$tt" log --store "$url" --store-schema audit --json >"$work/audit-log.json"
if grep -q '"stream":"audit\.' "$work/audit-log.json"; then
  fail "the capture recorded its own store's tables"
fi
expect_contains "$work/capture.err" "into the PostgreSQL store 'audit'"
psql "$url" -qAtc "SELECT pg_drop_replication_slot('audit')" >/dev/null

echo "6. bad input gets a clear error"
if "$tt" serve --store /tmp/not-a-url --listen 127.0.0.1:0 >"$work/bad.out" 2>&1; then
  fail "serve accepted a --store that is not a URL"
else
  [ $? = 2 ] || fail "a bad --store exited with the wrong code"
fi
expect_contains "$work/bad.out" "--store must be a postgresql:// URL"
if "$tt" read order-42 --store "postgresql://nobody:secret@127.0.0.1:1/none" >"$work/down.out" 2>&1; then
  fail "a read from an unreachable database succeeded"
fi
expect_contains "$work/down.out" "cannot connect to the PostgreSQL store 'timetrail_store' at postgresql://nobody@127.0.0.1:1/none"
if grep -q secret "$work/down.out"; then fail "the password was printed"; fi
if "$tt" read order-42 --store "$url" --store-schema no_such_schema >"$work/missing.out" 2>&1; then
  fail "a read of a store that does not exist succeeded"
fi
expect_contains "$work/missing.out" "schema 'no_such_schema' does not exist"
if "$tt" capture "$url" >"$work/nostore.out" 2>&1; then fail "capture ran without a store"; fi
expect_contains "$work/nostore.out" "give the store as either --data DIR or --store URL"
echo "ok"
