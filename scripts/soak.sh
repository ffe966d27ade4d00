#!/usr/bin/env bash
# Crash-and-verify soak of `timetrail serve`: concurrent HTTP writers and a subscriber run for a
# configurable time while the server is killed (SIGKILL) and restarted at random. At the end:
# every acknowledged append is in the log exactly once, no event is stored twice, the
# subscriber saw every position in order exactly once across its reconnects (resuming with
# Last-Event-ID), and `timetrail verify` passes. Exits non-zero on any violation.
# See docs/operations.md ("The soak script").
set -uo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/soak.sh [--minutes=N] [--seconds=N] [--seed=S] [--writers=N] [--capture]
                      [--bin=PATH] [--keep]

  --minutes=N   how long to run the workload (default 1); --seconds=N for shorter runs
  --seed=S      seed of the random kill schedule (default: the current time); printed, so a
                run can be repeated
  --writers=N   concurrent HTTP writers (default 3)
  --capture     also start a private PostgreSQL 15 (bench/lib/postgres.sh), run the server with
                --capture on it and a SQL workload (inserts and updates) on the source; half
                of the kills then terminate only the capture's replication connection (the
                server stays up and the capture must resume by itself); the end checks every committed source change is captured exactly once and every
                row's last event matches the source's final row
  --bin=PATH    the timetrail binary (default: $TIMETRAIL_BIN, else build/*/src/cli/timetrail)
  --keep        keep the work directory (data, acknowledgements, logs) for inspection

Needs curl and python3. Prints progress and a summary; exit 0 only if every check passed.
EOF
}

seconds=60
seed=$(date +%s)
writers=3
bin=${TIMETRAIL_BIN:-}
keep=0
capture=0
for arg in "$@"; do
  case "$arg" in
    --minutes=*) seconds=$(( ${arg#*=} * 60 )) ;;
    --seconds=*) seconds=${arg#*=} ;;
    --seed=*) seed=${arg#*=} ;;
    --writers=*) writers=${arg#*=} ;;
    --bin=*) bin=${arg#*=} ;;
    --keep) keep=1 ;;
    --capture) capture=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "soak: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "$bin" ]]; then
  bin=$(ls -t "$root"/build/*/src/cli/timetrail 2>/dev/null | head -n 1)
fi
if [[ -z "$bin" || ! -x "$bin" ]]; then
  echo "soak: no timetrail binary; build it or pass --bin=PATH" >&2
  exit 2
fi
RANDOM=$seed
work=$(mktemp -d /tmp/timetrail-soak.XXXXXX)
data=$work/data
echo "soak: ${seconds}s, seed $seed, $writers writers, binary $bin, work dir $work"

server_pid=""
port=""
capture_args=()
start_server() {
  local listen=${1:-127.0.0.1:0}
  "$bin" serve --data "$data" --listen "$listen" "${capture_args[@]}" >"$work/serve.out" \
      2>>"$work/serve.log" &
  server_pid=$!
  # Up to 60 s while the process lives: after a kill -9 it replays its write-ahead log first,
  # which on a 2-core machine busy with a parallel test suite can take more than a few seconds.
  for _ in $(seq 1 1200); do
    # Only a whole line counts: the line may be read while it is being written, and a port cut
    # short (or missing) would send every request after the next restart nowhere.
    if [[ $(wc -l <"$work/serve.out" 2>/dev/null || echo 0) -ge 1 ]] &&
        grep -q '^listening on' "$work/serve.out"; then
      port=$(sed -n 's/^listening on http:\/\/127.0.0.1:\([0-9][0-9]*\).*/\1/p' "$work/serve.out")
      if [[ -z "$port" ]]; then
        echo "soak: the server printed no port: $(head -n 1 "$work/serve.out")" >&2
        return 1
      fi
      echo "$port" >"$work/port"
      return 0
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 0.05
  done
  echo "soak: the server did not start (see $work/serve.log); its last lines:" >&2
  tail -n 20 "$work/serve.log" >&2 2>/dev/null || true
  return 1
}

cleanup() {
  jobs -p | xargs -r kill 2>/dev/null
  [[ -n "$server_pid" ]] && kill -9 "$server_pid" 2>/dev/null
  wait 2>/dev/null
  if [[ $capture -eq 1 ]]; then bench_pg_stop; fi
  if [[ $keep -eq 0 ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT

if [[ $capture -eq 1 ]]; then
  # shellcheck source=../bench/lib/postgres.sh
  source "$root/bench/lib/postgres.sh"
  BENCH_PG_EXTRA_CONF="wal_level = logical
max_replication_slots = 4
max_wal_senders = 4"
  bench_pg_start "$work" || exit 1
  psql -q -X "$BENCH_PG_CONNINFO" -c "CREATE TABLE soak_rows (id int PRIMARY KEY, v int NOT NULL)" \
    || exit 1
  capture_args=(--capture "postgresql://postgres@127.0.0.1:$BENCH_PG_PORT/postgres")
fi

start_server || exit 1
stop_at=$(( $(date +%s) + seconds ))

# A writer appends one event at a time to its own stream and records (writer, n, position) for
# every 201. A request the kill interrupts is unacknowledged: it may or may not be stored, but
# never twice.
writer() {
  local w=$1 n=0 code body
  while [[ $(date +%s) -lt $stop_at ]]; do
    n=$((n + 1))
    body=$(curl -s -m 10 -w '\n%{http_code}' -H 'Content-Type: application/json' \
      -d "{\"events\":[{\"type\":\"soak\",\"data\":{\"w\":$w,\"n\":$n}}]}" \
      "http://127.0.0.1:$(cat "$work/port")/v1/streams/soak-$w" 2>/dev/null)
    code=${body##*$'\n'}
    if [[ "$code" == 201 ]]; then
      echo "$w $n ${body%$'\n'*}" >>"$work/acks.$w"
    else
      sleep 0.05
    fi
  done
}

# The subscriber records every id it is sent and resumes after the last one on reconnect.
subscriber() {
  touch "$work/seen"
  while [[ ! -e "$work/subscriber.stop" ]]; do
    local last
    last=$(tail -n 1 "$work/seen")
    curl -sN -m 30 -H "Last-Event-ID: ${last:-0}" \
      "http://127.0.0.1:$(cat "$work/port")/v1/subscribe?from=1" 2>/dev/null |
      while IFS= read -r line; do
        case "$line" in id:*) echo "${line#id: }" >>"$work/seen" ;; esac
      done
    sleep 0.1
  done
}

writer_pids=()
for w in $(seq 1 "$writers"); do writer "$w" & writer_pids+=($!); done

# The SQL workload: each statement commits on its own; a successful psql is a committed change,
# recorded as "insert ID" or "update ID".
sql_workload() {
  local k=0
  while [[ $(date +%s) -lt $stop_at ]]; do
    k=$((k + 1))
    psql -q -X "$BENCH_PG_CONNINFO" -c "INSERT INTO soak_rows VALUES ($k, 0)" >/dev/null 2>&1 &&
      echo "insert $k" >>"$work/sql"
    if (( k % 2 == 0 )); then
      local u=$(( RANDOM % k + 1 ))
      psql -q -X "$BENCH_PG_CONNINFO" -At -c "UPDATE soak_rows SET v = v + 1 WHERE id = $u RETURNING id" \
        2>/dev/null | grep -q . && echo "update $u" >>"$work/sql"
    fi
  done
}
if [[ $capture -eq 1 ]]; then
  sql_workload &
  writer_pids+=($!)
fi
subscriber &
subscriber_pid=$!

kills=0
capture_kills=0
while [[ $(date +%s) -lt $stop_at ]]; do
  sleep "$(( RANDOM % 4 + 1 )).$(( RANDOM % 10 ))"
  [[ $(date +%s) -ge $stop_at ]] && break
  if [[ $capture -eq 1 && $(( RANDOM % 2 )) -eq 0 ]]; then
    # Kill only the capture: terminate its replication connection in the source. The server
    # stays up; the capture must reconnect and resume after the last change it stored.
    psql -q -X -At "$BENCH_PG_CONNINFO" -c "SELECT pg_terminate_backend(active_pid)
        FROM pg_replication_slots WHERE slot_name = 'timetrail' AND active_pid IS NOT NULL" \
      >/dev/null 2>&1 || true
    capture_kills=$((capture_kills + 1))
    echo "soak: capture connection terminated ($capture_kills so far); the server stays up"
    continue
  fi
  kill -9 "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  kills=$((kills + 1))
  start_server "127.0.0.1:$port" || exit 1
  acked=$(cat "$work"/acks.* 2>/dev/null | wc -l)
  echo "soak: kill $kills, restarted; $acked appends acknowledged, subscriber at $(tail -n 1 "$work/seen")"
done
for p in "${writer_pids[@]}"; do wait "$p" 2>/dev/null; done

# With capture: wait until every committed source change is in the store.
if [[ $capture -eq 1 ]]; then
  changes=$(wc -l <"$work/sql")
  for _ in $(seq 1 600); do
    got=$("$bin" export --server "http://127.0.0.1:$port" --stream-prefix public.soak_rows/ 2>/dev/null | wc -l)
    [[ $got -ge $changes ]] && break
    sleep 0.2
  done
  psql -X -At -F ' ' "$BENCH_PG_CONNINFO" -c "SELECT id, v FROM soak_rows ORDER BY id" >"$work/source_rows"
  echo "soak: $changes source changes committed; $got captured"
fi

# Let the subscriber catch up with the final head, then stop everything cleanly.
head=$(curl -s "http://127.0.0.1:$port/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["position"])')
for _ in $(seq 1 600); do
  [[ "$(tail -n 1 "$work/seen")" == "$head" ]] && break
  sleep 0.1
done
touch "$work/subscriber.stop"
kill "$server_pid"
wait "$server_pid"
rc=$?
kill "$subscriber_pid" 2>/dev/null
wait "$subscriber_pid" 2>/dev/null
server_pid=""
if [[ $rc -ne 0 ]]; then echo "soak: FAIL: the server did not stop cleanly (exit $rc)"; exit 1; fi

"$bin" export --data "$data" -o "$work/log.ndjson" >/dev/null 2>&1 || {
  echo "soak: FAIL: export of the data directory failed"; exit 1; }
verify_out=$("$bin" verify --data "$data" 2>&1)
verify_rc=$?

python3 - "$work" "$writers" "$head" "$kills" "$verify_rc" "$verify_out" "$capture" <<'EOF'
import collections, glob, json, sys
work, writers, head, kills, verify_rc, verify_out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
capture = sys.argv[7] == "1"
failures = []
captured = collections.defaultdict(list)
stored = {}
positions = []
for line in open(f"{work}/log.ndjson"):
    e = json.loads(line)
    positions.append(e["position"])
    d = e.get("data")
    if e["stream"].startswith("public.soak_rows/"):
        captured[int(e["stream"].split("/", 1)[1])].append(e)
    if e["stream"].startswith("soak-") and isinstance(d, dict):
        stored.setdefault((d["w"], d["n"]), []).append(e["position"])
if positions != list(range(1, len(positions) + 1)):
    failures.append("the log's positions are not 1..N without gaps")
dups = {k: v for k, v in stored.items() if len(v) > 1}
if dups:
    failures.append(f"{len(dups)} appends stored more than once, e.g. {next(iter(dups.items()))}")
acked = 0
for path in glob.glob(f"{work}/acks.*"):
    for line in open(path):
        w, n, body = line.split(" ", 2)
        acked += 1
        key = (int(w), int(n))
        pos = json.loads(body)["position"]
        if key not in stored:
            failures.append(f"acknowledged append {key} at position {pos} is missing")
        elif stored[key] != [pos]:
            failures.append(f"acknowledged append {key} was answered position {pos} but is at {stored[key]}")
seen = [int(x) for x in open(f"{work}/seen").read().split()]
if seen != list(range(1, head + 1)):
    bad = next((i for i, (a, b) in enumerate(zip(seen, range(1, head + 1))) if a != b), min(len(seen), head))
    failures.append(f"the subscriber saw {len(seen)} ids, not 1..{head} once each in order (first difference at index {bad})")
if capture:
    expected = collections.Counter()
    for line in open(f"{work}/sql"):
        op, k = line.split()
        expected[int(k)] += 1
    for k, n in expected.items():
        if len(captured.get(k, [])) != n:
            failures.append(f"source row {k}: {n} committed changes, {len(captured.get(k, []))} captured")
    for k in captured:
        if k not in expected:
            failures.append(f"source row {k} was captured but never committed")
    for line in open(f"{work}/source_rows"):
        k, v = map(int, line.split())
        events = captured.get(k, [])
        if not events or (events[-1].get("data") or {}).get("v") != v:
            failures.append(f"source row {k} has v={v}; its last captured event is {events[-1]['data'] if events else None}")
    print(f"soak: {sum(expected.values())} source changes on {len(expected)} rows checked")
if verify_rc != 0:
    failures.append(f"timetrail verify failed: {verify_out.strip()}")
print(f"soak: {kills} kills; {acked} appends acknowledged, {len(stored)} stored, log head {head}; "
      f"subscriber saw {len(seen)} events; verify exit {verify_rc}")
for f in failures[:20]:
    print("soak: FAIL:", f)
if failures:
    sys.exit(1)
print("soak: PASS")
EOF
