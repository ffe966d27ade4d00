#!/usr/bin/env bash
# `timetrail project`: the log as a table of changes in a real PostgreSQL (run under
# tests/support/with_postgres.sh). Every row matches the event it projects; a projector killed
# with -9 in the middle and restarted leaves every event exactly once; a follower sees events
# appended while it runs; bad input is refused clearly.
#
#   tests/support/with_postgres.sh tests/cli/project_test.sh path/to/timetrail path/to/source
set -euo pipefail
tt=$1
src=$2
url=$TIMETRAIL_PG_URL
work=$(mktemp -d "${TMPDIR:-/tmp}/timetrail-project-XXXXXX")
follower=""
cleanup() {
  [ -n "$follower" ] && kill -9 "$follower" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
sql() { psql "$url" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
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
pid=$!
for _ in $(seq 1 200); do
  n=$(sql "SELECT coalesce(max(position), 0) FROM timetrail.projection_checkpoints WHERE name = 'big'")
  [ "$n" -gt 5000 ] && break
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
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
echo ok
