#!/usr/bin/env bash
# A node that sends its reads to a streaming replica (serve --read-replica) and still honours
# consistency tokens. Two private clusters on loopback: a primary and an asynchronous hot
# standby made with pg_basebackup. With replay paused on the standby, an append through the
# node is acknowledged, a read without a token does not see it (the reads come from the
# standby), a read with its position as min_position times out with 504, and /metrics shows the
# lag; once replay resumes, the read with the token returns it. A subscription on the node
# receives every appended event in order. The standby stopped, reads answer unavailable while
# appends go on; restarted, reads see everything. Bad input: --read-replica with a data
# directory, a URL that is not postgresql://, a replica that cannot be reached, and a replica
# holding another store.
#
#   tests/cli/read_replica_test.sh path/to/timetrail path/to/source
set -euo pipefail
tt=$1
src=$2
source "$src/bench/lib/postgres.sh"
source "$src/tests/support/serve.sh"
source "$src/tests/support/standby.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/timetrail-replica-XXXXXX")
chmod o+x "$work"
sse_pid=""
cleanup() {
  if [ -n "$sse_pid" ]; then kill "$sse_pid" 2>/dev/null || true; fi
  standby_cleanup "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Sends a request to the node; the body goes to FILE, the status is printed.
call() {  # file, method, target[, JSON body]
  local file=$1 method=$2 target=$3
  if [ $# -ge 4 ]; then
    curl -sS -o "$file" -w '%{http_code}' -X "$method" -H 'Content-Type: application/json' \
      --data-binary "$4" "$serve_url$target"
  else
    curl -sS -o "$file" -w '%{http_code}' -X "$method" "$serve_url$target"
  fi
}
# Appends one event {"n": N} to STREAM and prints its position.
append() {  # stream, n
  local status
  status=$(call "$work/append.json" POST "/v1/streams/$1" "{\"events\":[{\"type\":\"t\",\"data\":{\"n\":$2}}]}")
  [ "$status" = 201 ] || fail "append to $1 answered $status: $(cat "$work/append.json")"
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["position"])' "$work/append.json"
}
# The "n" of each event of a stream read into FILE, space-separated.
ns() {  # file
  python3 -c 'import json,sys; print(" ".join(str(e["data"]["n"]) for e in json.load(open(sys.argv[1]))["events"]))' "$1"
}
lag() {
  [ "$(call "$work/metrics.txt" GET /metrics)" = 200 ] || fail "/metrics answered"
  sed -n 's/^timetrail_replica_lag_positions //p' "$work/metrics.txt"
}
replica_sql() {
  psql -h 127.0.0.1 -p "$STANDBY_PORT" -U postgres -d postgres -Atc "$1"
}
# Runs `timetrail serve` with arguments it must refuse: checks its exit code and its message.
serve_refused() {  # exit code, part of the message, serve arguments...
  local want=$1 message=$2 code=0
  shift 2
  "$tt" serve --listen 127.0.0.1:0 "$@" >/dev/null 2>"$work/err" || code=$?
  [ "$code" = "$want" ] || fail "serve $* exited $code, expected $want: $(cat "$work/err")"
  grep -qF -- "$message" "$work/err" || fail "serve $* says: $(cat "$work/err")"
}

echo "1. a primary with an asynchronous hot standby"
standby_primary_start "$work" || fail "the primary did not start"
standby_start "$work/standby" || fail "the standby did not start"
primary="postgresql://postgres@127.0.0.1:$BENCH_PG_PORT/postgres"
replica="postgresql://postgres@127.0.0.1:$STANDBY_PORT/postgres"

echo "2. bad input is refused before anything is opened"
serve_refused 2 "--read-replica is for a store kept in PostgreSQL" \
  --data "$work/data" --read-replica "$replica"
[ ! -e "$work/data" ] || fail "the data directory was created"
serve_refused 2 "--read-replica must be a postgresql:// URL" \
  --store "$primary" --read-replica "host=127.0.0.1"

echo "3. a replica that cannot be reached: the node does not start, and says why"
serve_refused 5 "read replica: cannot connect" \
  --store "$primary" --read-replica "postgresql://postgres@127.0.0.1:$(bench_free_port)/postgres"

echo "4. a node reading from the standby: appends acknowledged, read with their token"
serve_start "$tt" "$work/node" --store "$primary" --read-replica "$replica" --auth off
grep -qF "reads from the read replica (PostgreSQL store 'timetrail_store' at $replica)" "$work/node.err" ||
  fail "the node does not say where it reads: $(cat "$work/node.err")"
curl -sS -N "$serve_url/v1/subscribe?from=1" >"$work/sse.txt" 2>/dev/null &
sse_pid=$!
p1=$(append order-1 1)
status=$(call "$work/read.json" GET "/v1/streams/order-1?min_position=$p1&timeout_ms=5000")
[ "$status" = 200 ] || fail "a read with the token answered $status: $(cat "$work/read.json")"
[ "$(ns "$work/read.json")" = 1 ] || fail "a read with the token: $(cat "$work/read.json")"

echo "5. replay paused on the standby: the node's reads do not see a new append"
replica_sql "SELECT pg_wal_replay_pause()" >/dev/null
for _ in $(seq 1 100); do
  [ "$(replica_sql "SELECT pg_get_wal_replay_pause_state()")" = paused ] && break
  sleep 0.05
done
[ "$(replica_sql "SELECT pg_get_wal_replay_pause_state()")" = paused ] || fail "replay did not pause"
p2=$(append order-1 2)
status=$(call "$work/read.json" GET /v1/streams/order-1)
[ "$status" = 200 ] && [ "$(ns "$work/read.json")" = 1 ] ||
  fail "a read without a token saw past the replica ($status): $(cat "$work/read.json")"
status=$(call "$work/read.json" GET "/v1/streams/order-1?min_position=$p2&timeout_ms=300")
[ "$status" = 504 ] || fail "a read with the token answered $status while replay is paused: $(cat "$work/read.json")"
grep -q '"error":"timeout"' "$work/read.json" || fail "the 504's body: $(cat "$work/read.json")"
[ "$(lag)" = 1 ] || fail "/metrics: replica lag '$(lag)', expected 1"
# Appends go on meanwhile, answered without the replica.
for i in $(seq 3 12); do p_last=$(append "order-$((i % 3))" "$i"); done
[ "$(lag)" = 11 ] || fail "/metrics: replica lag '$(lag)', expected 11"

echo "6. replay resumed: the read with the token returns the append"
replica_sql "SELECT pg_wal_replay_resume()" >/dev/null
status=$(call "$work/read.json" GET "/v1/streams/order-1?min_position=$p2&timeout_ms=5000")
[ "$status" = 200 ] || fail "a read with the token answered $status after resume: $(cat "$work/read.json")"
[ "$(ns "$work/read.json")" = "1 2 4 7 10" ] || fail "order-1 after resume: $(cat "$work/read.json")"
status=$(call "$work/log.json" GET "/v1/log?from=1&min_position=$p_last&timeout_ms=5000")
[ "$status" = 200 ] || fail "the log with the last token answered $status"
[ "$(lag)" = 0 ] || fail "/metrics: replica lag '$(lag)' once caught up"

echo "7. the subscription received every appended event, in order"
for _ in $(seq 1 100); do
  [ "$(grep -c '^event: event' "$work/sse.txt" || true)" -ge "$p_last" ] && break
  sleep 0.05
done
python3 - "$work/sse.txt" "$p_last" <<'PY' || fail "the subscription"
import json, sys
path, last = sys.argv[1], int(sys.argv[2])
positions = [json.loads(line[len("data: "):])["position"]
             for line in open(path) if line.startswith("data: ")]
if positions != list(range(1, last + 1)):
    sys.exit("the subscription saw positions %s, expected 1..%d" % (positions, last))
PY
kill "$sse_pid" 2>/dev/null || true
sse_pid=""

echo "8. direct commands read the standby as a store of its own (--store, read-only)"
"$tt" read order-1 --store "$replica" --json >"$work/direct.json" 2>"$work/err" ||
  fail "timetrail read --store on the standby: $(cat "$work/err")"
[ "$(ns "$work/direct.json")" = "1 2 4 7 10" ] || fail "timetrail read --store on the standby: $(cat "$work/direct.json")"

echo "9. the standby down: reads answer unavailable, appends go on; back up, reads see them"
standby_stop
status=$(call "$work/read.json" GET /v1/streams/order-1)
[ "$status" = 503 ] || fail "a read with the replica down answered $status: $(cat "$work/read.json")"
grep -q '"error":"unavailable"' "$work/read.json" || fail "the 503's body: $(cat "$work/read.json")"
p_down=$(append order-1 13)
standby_restart || fail "the standby did not start again"
# Each pooled connection the replica dropped fails one read before it is replaced.
for _ in $(seq 1 40); do
  status=$(call "$work/read.json" GET "/v1/streams/order-1?min_position=$p_down&timeout_ms=5000")
  [ "$status" = 200 ] && break
  sleep 0.1
done
[ "$status" = 200 ] || fail "reads after the standby came back answered $status: $(cat "$work/read.json")"
[ "$(ns "$work/read.json")" = "1 2 4 7 10 13" ] || fail "order-1 after the standby came back: $(cat "$work/read.json")"
serve_stop

echo "10. a replica that holds another store is refused"
psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d postgres -qc "CREATE DATABASE other" >/dev/null
"$tt" append elsewhere -t t --store "postgresql://postgres@127.0.0.1:$BENCH_PG_PORT/other" \
  >/dev/null 2>"$work/err" || fail "a store in database other: $(cat "$work/err")"
# The node waits for a store to reach its replica, not for a database.
for _ in $(seq 1 100); do
  [ "$(replica_sql "SELECT count(*) FROM pg_database WHERE datname = 'other'")" = 1 ] && break
  sleep 0.1
done
serve_refused 1 "holds another store than the primary" \
  --store "$primary" --read-replica "postgresql://postgres@127.0.0.1:$STANDBY_PORT/other"
echo ok
