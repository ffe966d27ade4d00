#!/usr/bin/env bash
# Failover to a synchronous standby loses no acknowledged append. Two private clusters on
# loopback: a primary with synchronous_standby_names = '*' and a streaming standby made with
# pg_basebackup. A node serves the store through a libpq URL naming both
# (target_session_attrs=read-write) while a client appends with event ids; the primary is
# stopped as by a crash and the standby promoted (pg_ctl promote). The node refuses to confirm
# anything after losing its database (docs/scaling.md: restart the nodes); a node started on
# the same URL serves from the new primary, the client sends every unanswered append again with
# the same ids, and then every acknowledged append is in the log once, at its acknowledged
# position, and the integrity chain verifies.
#
#   tests/cli/failover_test.sh path/to/timetrail path/to/source
set -euo pipefail
tt=$1
src=$2
source "$src/bench/lib/postgres.sh"
source "$src/tests/support/serve.sh"
source "$src/tests/support/standby.sh"
bin=$BENCH_PG_BIN
work=$(mktemp -d "${TMPDIR:-/tmp}/timetrail-failover-XXXXXX")
chmod o+x "$work"
as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  [ -n "$serve_pid" ] && kill -9 "$serve_pid" 2>/dev/null
  bench_pg_stop
  standby_stop
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "1. a primary with a synchronous standby"
standby_primary_start "$work" "synchronous_standby_names = '*'" || fail "the primary did not start"
primary_port=$BENCH_PG_PORT
standby_start "$work/standby" || fail "the standby did not start"
standby_port=$STANDBY_PORT
url="postgresql://postgres@127.0.0.1:$primary_port,127.0.0.1:$standby_port/postgres?target_session_attrs=read-write&connect_timeout=2"

echo "2. appends with ids through a node; the primary dies and the standby is promoted"
serve_start "$tt" "$work/node1" --store "$url" --auth off
python3 - "$serve_url" "$work/acked.json" "$work/pending.json" <<'PY' &
import http.client, json, sys, time, urllib.parse, uuid
base, acked_path, pending_path = sys.argv[1:]
u = urllib.parse.urlparse(base)
acked, pending = {}, []
deadline = time.time() + 30
i = 0
while time.time() < deadline and i < 400:
    eid = str(uuid.uuid4())
    body = json.dumps({"events": [{"type": "t", "id": eid, "data": {"i": i}}]})
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        c.request("POST", "/v1/streams/orders-%d" % (i % 7), body, {"Content-Type": "application/json"})
        r = c.getresponse()
        answer = json.loads(r.read())
        if r.status == 201:
            acked[eid] = answer["position"]
        else:
            pending.append([i, eid])
    except OSError:
        pending.append([i, eid])
    i += 1
    time.sleep(0.01)
json.dump(acked, open(acked_path, "w"))
json.dump(pending, open(pending_path, "w"))
PY
client=$!
for _ in $(seq 1 300); do
  n=$(psql -h 127.0.0.1 -p "$primary_port" -U postgres -Atc "SELECT count(*) FROM timetrail_store.log" 2>/dev/null || echo 0)
  [ "$n" -ge 100 ] && break
  sleep 0.05
done
as_owner "$bin/pg_ctl" -D "$BENCH_PG_DIR/data" -m immediate -w stop >/dev/null
as_owner "$bin/pg_ctl" -D "$STANDBY_DIR/data" -w promote >/dev/null || fail "pg_ctl promote"
wait "$client"
[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/acked.json")" -ge 50 ] ||
  fail "too few appends were acknowledged before the failover"

echo "3. a node on the same URL serves from the new primary; unanswered appends are sent again"
serve_stop
serve_start "$tt" "$work/node2" --store "$url" --auth off
python3 - "$serve_url" "$work/acked.json" "$work/pending.json" <<'PY' || fail "the check after the failover"
import http.client, json, sys, time, urllib.parse
base, acked_path, pending_path = sys.argv[1:]
u = urllib.parse.urlparse(base)
acked = json.load(open(acked_path))
pending = json.load(open(pending_path))

def call(method, path, body=None):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request(method, path, body, {"Content-Type": "application/json"} if body else {})
    r = c.getresponse()
    return r.status, json.loads(r.read())

for i, eid in pending:  # the same request, the same id: written once whatever happened before
    body = json.dumps({"events": [{"type": "t", "id": eid, "data": {"i": i}}]})
    for _ in range(60):
        status, answer = call("POST", "/v1/streams/orders-%d" % (i % 7), body)
        if status in (200, 201):  # 200: it had been written before the failover (a replay)
            acked[eid] = answer["position"]
            break
        time.sleep(0.5)
    else:
        sys.exit("a resent append was never acknowledged: %s" % answer)
seen = {}
position = 1
while True:
    status, page = call("GET", "/v1/log?from=%d&limit=1000" % position)
    if status != 200:
        sys.exit("GET /v1/log answered %d" % status)
    for e in page["events"]:
        if e["id"] in seen:
            sys.exit("event %s is in the log twice" % e["id"])
        seen[e["id"]] = e["position"]
    if not page["events"]:
        break
    position = page["events"][-1]["position"] + 1
for eid, p in acked.items():
    if seen.get(eid) != p:
        sys.exit("acknowledged event %s at position %d is %s after the failover" % (eid, p, seen.get(eid)))
status, report = call("POST", "/v1/integrity/verify", "{}")
if status != 200 or not report["ok"]:
    sys.exit("the chain does not verify: %s" % report)
print("%d acknowledged appends, %d sent again, all in the log once; the chain verifies"
      % (len(acked), len(pending)))
PY
serve_stop
echo ok
