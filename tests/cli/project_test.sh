#!/usr/bin/env bash
# `timetrail project` and `serve --project` into a real PostgreSQL (run under
# tests/support/with_postgres.sh). Every row matches the event it projects; a projector killed
# with -9 in the middle and restarted leaves every table equal to the store (changes, state,
# per-property history: checked by projection_check against the store's own answers); a
# follower sees events appended while it runs; a server keeps projections in step and answers
# GET /v1/projections/{name}?min_position=P once P is projected; a projector reads a server's
# log over HTTP; bad input is refused clearly.
#
#   tests/support/with_postgres.sh tests/cli/project_test.sh path/to/timetrail path/to/source \
#     path/to/projection_check
set -euo pipefail
tt=$1
src=$2
checker=$3
url=$TIMETRAIL_PG_URL
export PGOPTIONS="-c client_min_messages=warning"  # no "drop cascades to" notices
work=$(mktemp -d "${TMPDIR:-/tmp}/timetrail-project-XXXXXX")
follower=""
# shellcheck source=../support/serve.sh
source "$src/tests/support/serve.sh"
cleanup() {
  [ -n "$follower" ] && kill -9 "$follower" 2>/dev/null || true
  [ -n "$serve_pid" ] && kill -9 "$serve_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
sql() { psql "$url" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
# kill_when PID SQL N: kill -9 the projector PID once SQL (a checkpoint position) passes N, in
# the middle of its load.
kill_when() {
  for _ in $(seq 1 300); do
    [ "$(sql "$2")" -gt "$3" ] && break
    sleep 0.05
  done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
data="$work/data"

echo "1. every event becomes one row, with its actor, reason, states and changed members"
"$tt" append friend-1 -t '$put' -d '{"name":"Rachel","city":"New York"}' --actor joey \
  --reason 'we met' --expected no_stream --data "$data" >/dev/null
"$tt" append friend-1 -t '$patch' -d '{"city":"Paris"}' --actor monica --reason 'she moved' \
  --data "$data" >/dev/null
"$tt" append friend-1 -t 'NoteAdded' -d '{"note":"tab\there"}' --data "$data" >/dev/null
"$tt" append friend-1 -t '$delete' --actor ross --data "$data" >/dev/null
"$tt" project "$url" --data "$data" 2>"$work/p1.err" || { cat "$work/p1.err" >&2; fail "project"; }
[ "$(sql "SELECT count(*) FROM timetrail.changes")" = 4 ] || fail "expected 4 rows"
[ "$(sql "SELECT position FROM timetrail.projection_checkpoints WHERE name = 'changes'")" = 4 ] ||
  fail "the checkpoint is not at position 4"
row=$(sql "SELECT operation, actor, reason, before->>'city', after->>'city', array_to_string(changed, ',')
           FROM timetrail.changes WHERE position = 2")
[ "$row" = "update|monica|she moved|New York|Paris|city" ] || fail "row 2 is '$row'"
row=$(sql "SELECT operation, after IS NULL, data->>'note' FROM timetrail.changes WHERE position = 3")
[ "$row" = "NoteAdded|f|$(printf 'tab\there')" ] || fail "row 3 is '$row'"
row=$(sql "SELECT operation, after IS NULL, array_to_string(changed, ',') FROM timetrail.changes WHERE position = 4")
[ "$row" = "delete|t|city,name" ] || fail "row 4 is '$row'"
# Run again: nothing new, nothing written twice.
"$tt" project "$url" --data "$data" 2>"$work/p2.err"
grep -q "; 0 events read" "$work/p2.err" || { cat "$work/p2.err" >&2; fail "a second run projected again"; }

echo "2. killed with -9 in the middle of a load, then restarted: every event exactly once"
python3 "$src/bench/make_import_file.py" --lines 60000 --streams 3000 -o "$work/events.ndjson"
"$tt" import "$work/events.ndjson" --data "$work/big" >/dev/null 2>&1
"$tt" project "$url" --data "$work/big" --name big --batch 500 2>/dev/null &
kill_when $! "SELECT coalesce(max(position), 0) FROM timetrail.projection_checkpoints WHERE name = 'big'" 5000
before=$(sql "SELECT count(*) FROM timetrail.big")
[ "$before" -lt 60000 ] || echo "(the projector finished before the kill; the restart still must add nothing)"
# What the table holds is exactly the checkpoint's prefix of the log.
check=$(sql "SELECT count(*) = max(position) AND max(position) = (SELECT position FROM timetrail.projection_checkpoints WHERE name = 'big') FROM timetrail.big")
[ "$check" = t ] || fail "after the kill the table is not the checkpoint's prefix"
"$tt" project "$url" --data "$work/big" --name big --batch 500 2>/dev/null
[ "$(sql "SELECT count(*) FROM timetrail.big")" = 60000 ] || fail "not every event is in the table once"
[ "$(sql "SELECT count(DISTINCT position) FROM timetrail.big")" = 60000 ] || fail "duplicates"
# Each stream's last row's state equals the store's state of that stream.
stream=$(sql "SELECT stream FROM timetrail.big ORDER BY position DESC LIMIT 1")
want=$("$tt" get "$stream" --data "$work/big" --json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["state"], sort_keys=True))')
got=$(sql "SELECT after FROM timetrail.big WHERE stream = '$stream' ORDER BY position DESC LIMIT 1" |
  python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))')
[ "$want" = "$got" ] || fail "the last state of $stream differs: $got vs $want"

echo "3. --follow sees events appended while it runs"
"$tt" project "$url" --data "$data" --follow 2>"$work/follow.err" &
follower=$!
sleep 0.5
"$tt" append friend-2 -t '$put' -d '{"name":"Phoebe"}' --actor rachel --data "$data" >/dev/null
for _ in $(seq 1 100); do
  [ "$(sql "SELECT count(*) FROM timetrail.changes WHERE stream = 'friend-2'")" = 1 ] && break
  sleep 0.1
done
[ "$(sql "SELECT actor FROM timetrail.changes WHERE stream = 'friend-2'")" = rachel ] ||
  { cat "$work/follow.err" >&2; fail "the follower did not project the new event"; }
kill "$follower"
wait "$follower" 2>/dev/null || true
follower=""

echo "4. bad input is refused clearly"
if "$tt" project --data "$data" >"$work/bad1.out" 2>&1; then fail "project without a target ran"; fi
grep -q "give the target database" "$work/bad1.out" || { cat "$work/bad1.out"; fail "message"; }
# A target projected from a longer store: its checkpoint is past this store's end.
"$tt" append x -t T --data "$work/tiny" >/dev/null
if "$tt" project "$url" --data "$work/tiny" >"$work/bad3.out" 2>&1; then
  fail "a checkpoint past the end of the store was accepted"
fi
grep -q "past the end of the log of" "$work/bad3.out" || { cat "$work/bad3.out"; fail "message"; }
echo '{"projections": [{"name": "s", "kind": "state", "columns": {"total": "money"}}]}' >"$work/bad.json"
if "$tt" project "$url" --config "$work/bad.json" --data "$data" >"$work/bad4.out" 2>&1; then
  fail "a configuration with an unknown type was accepted"
fi
grep -q "unknown column type 'money'" "$work/bad4.out" || { cat "$work/bad4.out"; fail "message"; }

echo "5. every kind from a configuration, killed with -9 in the middle and restarted"
cat >"$work/config.json" <<JSON
{"target": "$url", "batch": 400, "projections": [
  {"name": "all_changes", "kind": "changes"},
  {"name": "accounts", "kind": "state", "streams": ["acct-"],
   "columns": {"owner": "text", "balance": "bigint", "note": "text"}},
  {"name": "account_docs", "kind": "state", "streams": ["acct-"]},
  {"name": "account_history", "kind": "history", "streams": ["acct-"],
   "properties": {"owner": "text", "balance": "bigint"}}]}
JSON
python3 - "$work/accounts.ndjson" <<'PY'
import json, random, sys
random.seed(3)
with open(sys.argv[1], "w") as out:
    for i in range(20000):
        a = random.randrange(800)
        if random.random() < 0.1:
            e = {"type": "$put", "data": {"owner": "o%d" % random.randrange(50), "balance": 0}}
        elif random.random() < 0.05:
            e = {"type": "$delete"}
        else:
            e = {"type": "$patch", "data": {"balance": random.randrange(10**6)}}
        e["stream"] = "acct-%d" % a
        e["metadata"] = {"actor": "teller%d" % random.randrange(5)}
        out.write(json.dumps(e) + "\n")
PY
"$tt" import "$work/accounts.ndjson" --data "$work/acct" >/dev/null 2>&1
"$tt" project --config "$work/config.json" --data "$work/acct" --follow 2>/dev/null &
kill_when $! "SELECT coalesce(min(position), 0) FROM timetrail.projection_checkpoints WHERE name IN ('accounts', 'account_history')" 2000
"$tt" project --config "$work/config.json" --data "$work/acct" 2>"$work/p5.err" ||
  { cat "$work/p5.err" >&2; fail "the restarted projector failed"; }
"$checker" --data "$work/acct" --config "$work/config.json" --target "$url" ||
  fail "after a kill -9 and a restart the tables differ from the store"
# The whole entity as of a time, in one query, from the history tables.
stream=$(sql "SELECT stream FROM timetrail.accounts ORDER BY stream LIMIT 1")
want=$("$tt" get "$stream" --data "$work/acct" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"]["balance"])')
got=$(sql "SELECT balance FROM timetrail.account_history_as_of(now()) WHERE stream = '$stream'")
[ "$want" = "$got" ] || fail "account_history_as_of(now()) gives $got for $stream, the store $want"

echo "6. --rebuild fills new tables and swaps them in"
sql "UPDATE timetrail.accounts SET balance = -1" >/dev/null
"$tt" project --config "$work/config.json" --data "$work/acct" --rebuild --only accounts --progress \
  2>"$work/p6.err" || { cat "$work/p6.err" >&2; fail "rebuild"; }
grep -q "rebuilt 'accounts' up to position 20000 and swapped it in" "$work/p6.err" ||
  { cat "$work/p6.err" >&2; fail "the rebuild did not say it swapped"; }
[ "$(sql "SELECT count(*) FROM timetrail.accounts WHERE balance = -1")" = 0 ] ||
  fail "the rebuilt table still has the old rows"
"$checker" --data "$work/acct" --config "$work/config.json" --target "$url" || fail "after the rebuild"

echo "7. serve --project keeps the tables in step; GET /v1/projections/{name}?min_position=P"
sql "DROP SCHEMA timetrail CASCADE" >/dev/null
serve_start "$tt" "$work/serve" --data "$work/served" --auth off --project "$work/config.json"
base=$serve_url
last=$(curl -sf -X POST "$base/v1/streams/acct-1" -H 'Content-Type: application/json' \
  -d '{"events":[{"type":"$put","data":{"owner":"zoe","balance":10}},{"type":"$patch","data":{"balance":20}}]}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["position"])')
answer=$(curl -sf "$base/v1/projections/account_history?min_position=$last&timeout_ms=20000")
echo "$answer" | python3 -c '
import json, sys
p = json.load(sys.stdin)
assert p["name"] == "account_history" and p["kind"] == "history", p
assert p["position"] >= int(sys.argv[1]) and p["lag_events"] == 0 and p["error"] is None, p
' "$last" || fail "GET /v1/projections/account_history: $answer"
# Visible in SQL as soon as the server says so: the checkpoint and the rows are one transaction.
[ "$(sql "SELECT value FROM timetrail.account_history_balance WHERE stream = 'acct-1' AND upper_inf(vclock)")" = 20 ] ||
  fail "the projected balance is not 20"
[ "$(sql "SELECT position >= $last FROM timetrail.projection_checkpoints WHERE name = 'account_history'")" = t ] ||
  fail "the checkpoint is behind"
curl -sf "$base/v1/projections" | python3 -c '
import json, sys
names = sorted(p["name"] for p in json.load(sys.stdin)["projections"])
assert names == ["account_docs", "account_history", "accounts", "all_changes"], names
' || fail "GET /v1/projections"
curl -sf "$base/v1/projections/accounts?min_position=$last&timeout_ms=20000" >/dev/null ||
  fail "the accounts projection did not reach $last"
# Into a file first: grep -q stops reading at its match, and curl would fail on the closed pipe.
curl -sf "$base/metrics" -o "$work/metrics.txt" || fail "GET /metrics"
grep -q 'timetrail_projection_position{projection="accounts"} '"$last" "$work/metrics.txt" ||
  fail "/metrics has no position for the projection"
code=$(curl -s -o "$work/404.json" -w '%{http_code}' "$base/v1/projections/nope")
[ "$code" = 404 ] || fail "an unknown projection answered $code"
code=$(curl -s -o "$work/504.json" -w '%{http_code}' "$base/v1/projections/accounts?min_position=999999&timeout_ms=100")
[ "$code" = 504 ] || fail "a wait for a position never projected answered $code"
grep -Eq "had projected up to position|was not readable within" "$work/504.json" ||
  fail "the timeout does not say where it is"

echo "8. a projector reads a server's log over HTTP (--server)"
cat >"$work/remote.json" <<JSON
{"projections": [{"name": "remote_accounts", "kind": "history", "streams": ["acct-"],
                  "properties": {"balance": "bigint"}}]}
JSON
"$tt" project "$url" --config "$work/remote.json" --server "$base" 2>"$work/p8.err" ||
  { cat "$work/p8.err" >&2; fail "project --server"; }
[ "$(sql "SELECT string_agg(value::text, ',' ORDER BY lower(vclock)) FROM timetrail.remote_accounts_balance WHERE stream = 'acct-1'")" = "10,20" ] ||
  fail "the history read over HTTP is not 10,20"
serve_stop
echo ok
