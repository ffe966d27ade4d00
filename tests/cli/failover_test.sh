#!/usr/bin/env bash
# Failover to a synchronous standby loses no acknowledged append. Two private clusters on
# loopback: a primary with synchronous_standby_names = '*' and a streaming standby made with
# pg_basebackup. A node serves the store through a libpq URL naming both
# (target_session_attrs=read-write) while a client appends with event ids and a subscriber
# follows the log; the primary is stopped as by a crash and the standby promoted (pg_ctl
# promote) while the appends go on. The same node process reconnects by itself and acknowledges
# appends again; the client sends every unanswered append again with the same ids, and then
# every acknowledged append is in the log once, at its acknowledged position, the subscriber
# was shown exactly the log, in order, and the integrity chain verifies.
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
trap 'standby_cleanup "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "1. a primary with a synchronous standby"
standby_primary_start "$work" "synchronous_standby_names = '*'" || fail "the primary did not start"
primary_port=$BENCH_PG_PORT
standby_start "$work/standby" || fail "the standby did not start"
standby_port=$STANDBY_PORT
url="postgresql://postgres@127.0.0.1:$primary_port,127.0.0.1:$standby_port/postgres?target_session_attrs=read-write&connect_timeout=2"

echo "2. appends with ids and a subscriber on one node; the primary dies, the standby is promoted"
serve_start "$tt" "$work/node" --store "$url" --auth off
node_pid=$serve_pid
owner=""
[ "$(id -u)" -eq 0 ] && owner="runuser -u postgres --"
crash="$owner $bin/pg_ctl -D $BENCH_PG_DIR/data -m immediate -w stop"
promote="$owner $bin/pg_ctl -D $STANDBY_DIR/data -w promote"
python3 - "$serve_url" "$crash" "$promote" <<'PY' || fail "the failover"
import http.client, json, subprocess, sys, threading, time, urllib.parse, uuid
base, crash, promote = sys.argv[1:]
u = urllib.parse.urlparse(base)

def call(method, path, body=None, timeout=10):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request(method, path, body, {"Content-Type": "application/json"} if body else {})
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()

class Subscriber(threading.Thread):
    """GET /v1/subscribe?from=1 through the failover: every event it is shown, in order."""
    def __init__(self):
        super().__init__(daemon=True)
        self.events, self.ended, self.lock = [], None, threading.Lock()
    def run(self):
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
            c.request("GET", "/v1/subscribe?from=1")
            r = c.getresponse()
            while True:
                line = r.fp.readline()
                if not line:
                    self.ended = "closed"
                    return
                if line.startswith(b"data: "):
                    e = json.loads(line[6:])
                    with self.lock:
                        self.events.append((e["position"], e["id"]))
        except Exception as e:
            self.ended = repr(e)

sub = Subscriber()
sub.start()
failover = {}
def fail_over():
    subprocess.run(crash, shell=True, check=True, stdout=subprocess.DEVNULL)
    failover["crashed"] = time.time()
    subprocess.run(promote, shell=True, check=True, stdout=subprocess.DEVNULL)
    failover["promoted"] = time.time()

def append(i, eid):
    body = json.dumps({"events": [{"type": "t", "id": eid, "data": {"i": i}}]})
    try:
        status, answer = call("POST", "/v1/streams/orders-%d" % (i % 7), body)
    except OSError as e:
        return None, repr(e)
    return (answer["position"] if status in (200, 201) else None), answer

# Appends go on through the failover, without a pause: the node must come back by itself,
# on the same process, and then acknowledge a long run of appends in a row.
acked, pending, errors = {}, [], set()
streak, i, deadline = 0, 0, time.time() + 90
killer = None
while time.time() < deadline and streak < 150:
    eid = str(uuid.uuid4())
    position, answer = append(i, eid)
    if position is not None:
        acked[eid] = position
        if "promoted" in failover:
            streak += 1
    else:
        pending.append([i, eid])
        errors.add(str(answer.get("error") if isinstance(answer, dict) else answer))
        streak = 0
    if killer is None and len(acked) >= 100:
        killer = threading.Thread(target=fail_over)
        killer.start()
    i += 1
    time.sleep(0.005)
killer.join()
if streak < 150:
    sys.exit("the node did not come back after the failover: %d appends in a row acknowledged, "
             "errors %s" % (streak, sorted(errors)))
if not pending:
    sys.exit("no append failed across the failover: the primary was not lost under load")
print("%d appends acknowledged, %d unanswered during the failover (%s), then %d in a row"
      % (len(acked), len(pending), ", ".join(sorted(errors)), streak))

# The same request, the same id: written once whatever happened before.
for i, eid in pending:
    for _ in range(60):
        position, answer = append(i, eid)
        if position is not None:
            acked[eid] = position
            break
        time.sleep(0.5)
    else:
        sys.exit("a resent append was never acknowledged: %s" % answer)

seen, log, position = {}, [], 1
while True:
    status, page = call("GET", "/v1/log?from=%d&limit=1000" % position)
    if status != 200:
        sys.exit("GET /v1/log answered %d: %s" % (status, page))
    for e in page["events"]:
        if e["id"] in seen:
            sys.exit("event %s is in the log twice" % e["id"])
        seen[e["id"]] = e["position"]
        log.append((e["position"], e["id"]))
    if not page["events"]:
        break
    position = page["events"][-1]["position"] + 1
if [p for p, _ in log] != list(range(1, len(log) + 1)):
    sys.exit("the log has gaps")
for eid, p in acked.items():
    if seen.get(eid) != p:
        sys.exit("acknowledged event %s at position %d is %s after the failover"
                 % (eid, p, seen.get(eid)))
# The subscriber was never shown an event the failover lost: what it saw is the log itself.
for _ in range(100):
    with sub.lock:
        shown = list(sub.events)
    if len(shown) >= len(log) or sub.ended:
        break
    time.sleep(0.1)
if shown != log:
    first = next((k for k, (a, b) in enumerate(zip(shown, log)) if a != b), min(len(shown), len(log)))
    sys.exit("the subscriber saw %d events, the log has %d; they differ from the %d-th (%s)"
             % (len(shown), len(log), first + 1, sub.ended))
status, report = call("POST", "/v1/integrity/verify", "{}", timeout=60)
if status != 200 or not report["ok"]:
    sys.exit("the chain does not verify: %s" % report)
print("%d acknowledged appends, %d sent again, all in the log once; the subscriber saw the log "
      "1..%d in order; the chain verifies" % (len(acked), len(pending), len(log)))
PY
[ "$serve_pid" = "$node_pid" ] && kill -0 "$node_pid" || fail "the node did not stay up"
serve_stop
echo ok
