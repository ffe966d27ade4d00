#!/usr/bin/env bash
# CTest of the benchmark machinery, not of its numbers (no timing is asserted): append_bench runs
# briefly against timetrail alone in 3 rounds, and its results must show the round with the
# median throughput, keep every round, and say so in the summary.
# Usage: bench/smoke_test.sh PATH/TO/append_bench
set -euo pipefail
bin=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/timetrail-bench-smoke.XXXXXX")
trap 'rm -rf "$dir"' EXIT
if ! "$bin" --data-dir="$dir/store" --seconds=0.3 --rounds=3 --read-events=2000 \
    --fsync-seconds=0.1 --many-threads=4 --batch-threads=2 \
    --out="$dir/out.json" --markdown="$dir/out.md" >"$dir/stdout" 2>"$dir/stderr"; then
  cat "$dir/stderr" >&2
  exit 1
fi
python3 - "$dir/out.json" <<'PY'
import json
import sys

d = json.load(open(sys.argv[1]))
assert d["config"]["rounds"] == 3, d["config"]
assert len(d["scenarios"]) == 6, [s["name"] for s in d["scenarios"]]
for s in d["scenarios"]:
    t = s["timetrail"]
    rounds = t["round_events_per_second"]
    assert t["rounds"] == 3 and len(rounds) == 3, (s["name"], t)
    assert sorted(rounds)[1] == t["events_per_second"], (s["name"], rounds, t["events_per_second"])
    assert t["errors"] == 0 and t["events"] > 0, (s["name"], t)
print("bench smoke: 6 scenarios, 3 rounds each, median round reported")
PY
grep -q "3 round(s) of 0.3 s per scenario" "$dir/out.md"
