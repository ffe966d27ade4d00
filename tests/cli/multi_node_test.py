#!/usr/bin/python3
"""Three `timetrail serve` nodes on one store kept in PostgreSQL, over real HTTP.

Run under tests/support/with_postgres.sh (which sets TIMETRAIL_PG_URL):

    tests/support/with_postgres.sh /usr/bin/python3 tests/cli/multi_node_test.py path/to/timetrail

1. The nodes start at once on a schema that does not exist yet.
2. A subscription on node B wakes for an append on node A, and a `min_position` read on node B
   waits for it (within a generous deadline: no timing is asserted).
3. Client processes append through all three nodes at once: single appends with event ids,
   transactions across streams, and appends to one shared stream with expected revisions that
   conflict across nodes (half of them in a transaction with a second stream, which must be
   written with it or not at all). Some requests are sent again to another node, which must
   answer with the original positions. Meanwhile node C is killed with -9; clients whose
   request got no answer send it again, with the same ids, to another node.
4. Afterwards: every subscriber of a live node saw exactly positions 1..head, in order, each
   the event the log holds there; every acknowledged event is in the log once, at its
   acknowledged position, and no event twice; the shared stream has one revision per
   acknowledged append; the integrity chain verifies (`timetrail verify --store` and
   POST /v1/integrity/verify).
"""
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

SCHEMA = "multi_node"


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


class Node:
    def __init__(self, tt, url, work, name, auth="off"):
        self.name = name
        self.out = open(os.path.join(work, name + ".out"), "w+")
        self.err = open(os.path.join(work, name + ".err"), "w+")
        self.proc = subprocess.Popen(
            [tt, "serve", "--store", url, "--store-schema", SCHEMA, "--listen", "127.0.0.1:0",
             "--auth", auth], stdout=self.out, stderr=self.err)
        self.port = None

    def wait_listening(self):
        deadline = time.time() + 60
        while time.time() < deadline:
            with open(self.out.name) as f:
                for line in f:
                    if line.startswith("listening on "):
                        self.port = int(line.strip().rsplit(":", 1)[1])
                        return
            if self.proc.poll() is not None:
                with open(self.err.name) as f:
                    fail("node %s exited: %s" % (self.name, f.read()))
            time.sleep(0.1)
        fail("node %s did not start" % self.name)


def request(port, method, path, body=None, timeout=60, token=None):
    """(status, parsed body); raises OSError when the node does not answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)
    finally:
        conn.close()


class Subscriber(threading.Thread):
    """Reads GET /v1/subscribe?from=1 from one node: (position, event) in arrival order."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.events = []
        self.lock = threading.Lock()
        self.ended = None

    def run(self):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            conn.request("GET", "/v1/subscribe?from=1")
            r = conn.getresponse()
            if r.status != 200:
                self.ended = "HTTP %d" % r.status
                return
            event_id = None
            while True:
                line = r.fp.readline()
                if not line:
                    self.ended = "closed"
                    return
                line = line.decode().rstrip("\n")
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("data: "):
                    e = json.loads(line[6:])
                    if e["position"] != event_id:
                        self.ended = "id %s for position %s" % (event_id, e["position"])
                        return
                    with self.lock:
                        self.events.append(e)
        except Exception as e:  # the node was killed, or the test is over
            self.ended = repr(e)

    def positions(self):
        with self.lock:
            return [e["position"] for e in self.events]

    def wait_for(self, position, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            p = self.positions()
            if p and p[-1] >= position:
                return True
            time.sleep(0.05)
        return False


# --- The client processes -------------------------------------------------------------------

def worker(ports_file, worker_index, operations, out_path):
    """Appends through the nodes in turn; writes one JSON line per acknowledged request."""
    rnd = random.Random(worker_index)
    out = open(out_path, "w")
    # All three, also once node C is dead: a request it does not answer goes to the next node.
    with open(ports_file) as f:
        nodes = json.load(f)
    resent = [0]

    def send(path, body, first_node):
        """Sends until some node answers; the same body (same ids) each time."""
        attempt = 0
        while True:
            port = nodes[(first_node + attempt) % len(nodes)]
            attempt += 1
            try:
                status, answer = request(port, "POST", path, body, timeout=30)
            except OSError:
                if attempt > 200:
                    raise
                resent[0] += 1
                continue
            if status in (502, 503) and attempt <= 200:  # a node going down: another one
                resent[0] += 1
                continue
            return port, status, answer

    def event(kind, n):
        return {"id": str(uuid.uuid4()), "type": kind, "data": {"w": worker_index, "n": n}}

    for n in range(operations):
        first = rnd.randrange(3)
        choice = rnd.random()
        if choice < 0.45:
            stream = "w%d-%d" % (worker_index, rnd.randrange(4))
            body = {"expected_revision": "any", "events": [event("single", n), event("single", n)]}
            path = "/v1/streams/" + stream
            port, status, answer = send(path, body, first)
            if status not in (200, 201):
                fail("append: HTTP %d %s" % (status, answer))
            ids = [e["id"] for e in body["events"]]
            out.write(json.dumps({"kind": "single", "ids": ids, "streams": [stream] * 2,
                                  "first": answer["first_position"],
                                  "last": answer["position"], "resent": resent[0],
                                  "replay": answer.get("idempotent_replay", False)}) + "\n")
            if rnd.random() < 0.3:
                # The same request again, on another node: the original answer.
                _, status, again = send(path, body, first + 1)
                if status != 200 or not again.get("idempotent_replay") or \
                        again["first_position"] != answer["first_position"]:
                    fail("a retry on another node was not a replay: HTTP %d %s (first %s)"
                         % (status, again, answer))
        elif choice < 0.75:
            streams = ["tx-%d" % rnd.randrange(8), "tx-%d" % (8 + rnd.randrange(8))]
            body = {"appends": [{"stream": s, "expected_revision": "any",
                                 "events": [event("tx", n)]} for s in streams]}
            port, status, answer = send("/v1/transactions", body, first)
            if status not in (200, 201):
                fail("transaction: HTTP %d %s" % (status, answer))
            ids = [a["events"][0]["id"] for a in body["appends"]]
            out.write(json.dumps({"kind": "tx", "ids": ids, "streams": streams,
                                  "first": answer["first_position"],
                                  "last": answer["position"], "resent": resent[0],
                                  "replay": answer.get("idempotent_replay", False)}) + "\n")
        else:
            # The shared stream: read its revision on one node, append on another, again
            # until the expectation holds. Half of the time in a transaction with a second
            # stream, written only with it.
            e = event("counter", n)
            with_log = rnd.random() < 0.5
            e2 = event("counter-log", n)
            conflicts = 0
            while True:
                try:
                    status, info = request(nodes[rnd.randrange(len(nodes))], "GET",
                                           "/v1/streams/counter/info", timeout=30)
                except OSError:
                    continue
                if status != 200:
                    continue
                expected = info["revision"] if info["exists"] else "no_stream"
                if with_log:
                    body = {"appends": [
                        {"stream": "counter", "expected_revision": expected, "events": [e]},
                        {"stream": "counter-log", "expected_revision": "any", "events": [e2]}]}
                    port, status, answer = send("/v1/transactions", body, rnd.randrange(3))
                    if status in (200, 201):
                        answer["revision"] = answer["streams"][0]["revision"]
                        break
                else:
                    body = {"expected_revision": expected, "events": [e]}
                    port, status, answer = send("/v1/streams/counter", body, rnd.randrange(3))
                    if status in (200, 201):
                        break
                if status != 409 or answer.get("error") != "wrong_expected_revision":
                    fail("counter append: HTTP %d %s" % (status, answer))
                conflicts += 1
            ids = [e["id"], e2["id"]] if with_log else [e["id"]]
            streams = ["counter", "counter-log"] if with_log else ["counter"]
            out.write(json.dumps({"kind": "counter", "ids": ids, "streams": streams,
                                  "first": answer["first_position"], "last": answer["position"],
                                  "revision": answer["revision"],
                                  "replay": answer.get("idempotent_replay", False),
                                  "conflicts": conflicts, "resent": resent[0]}) + "\n")
        out.flush()
    out.close()


# --- The test --------------------------------------------------------------------------------

def read_log(port):
    events, position = [], 1
    while True:
        status, page = request(port, "GET", "/v1/log?from=%d&limit=1000" % position)
        if status != 200:
            fail("log: HTTP %d %s" % (status, page))
        events.extend(page["events"])
        if page["next"] > page["head"]:
            return events, page["head"]
        position = page["next"]


def main():
    tt = os.path.abspath(sys.argv[1])
    url = os.environ["TIMETRAIL_PG_URL"]
    work = tempfile.mkdtemp(prefix="timetrail-multinode-")
    nodes = []
    workers = []
    try:
        print("1. three nodes start at once on a new schema")
        nodes = [Node(tt, url, work, n) for n in ("a", "b", "c")]
        for n in nodes:
            n.wait_listening()
        a, b, c = nodes
        ports_file = os.path.join(work, "ports.json")
        with open(ports_file, "w") as f:
            json.dump([n.port for n in nodes], f)
        subscribers = {n.name: Subscriber(n.port) for n in nodes}
        for s in subscribers.values():
            s.start()

        print("2. node B wakes for an append on node A")
        status, head = request(a.port, "GET", "/v1/log?limit=1")
        status, answer = request(a.port, "POST", "/v1/streams/wake", {"events": [{"type": "ping"}]})
        if status != 201:
            fail("append on A: HTTP %d %s" % (status, answer))
        p = answer["position"]
        status, page = request(b.port, "GET", "/v1/log?from=%d&limit=1&min_position=%d"
                               "&timeout_ms=30000" % (p, p))
        if status != 200 or not page["events"] or page["events"][0]["position"] != p:
            fail("min_position on B for A's append: HTTP %d %s" % (status, page))
        status, entity = request(b.port, "GET", "/v1/streams/wake?min_position=%d" % p)
        if status != 200 or len(entity["events"]) != 1:
            fail("read on B after min_position: HTTP %d %s" % (status, entity))
        if not subscribers["b"].wait_for(p, 30):
            fail("the subscription on B did not see A's append (saw %s)"
                 % subscribers["b"].positions())

        print("3. clients append through all three nodes; node C is killed with -9 meanwhile")
        worker_count, operations = 6, 100
        for i in range(worker_count):
            out_path = os.path.join(work, "acks-%d.jsonl" % i)
            workers.append((subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--worker", ports_file, str(i),
                 str(operations), out_path]), out_path))

        def acknowledged():
            total = 0
            for _, path in workers:
                if os.path.exists(path):
                    with open(path) as f:
                        total += sum(1 for _ in f)
            return total

        deadline = time.time() + 120
        while acknowledged() < worker_count * operations // 3 and time.time() < deadline:
            time.sleep(0.05)
        c.proc.send_signal(signal.SIGKILL)
        c.proc.wait()
        print("   node C killed after %d acknowledged requests" % acknowledged())
        for proc, _ in workers:
            if proc.wait(timeout=300) != 0:
                fail("a client process failed")

        print("4. what the subscribers saw, the log, the shared stream and the chain")
        log, head = read_log(a.port)
        positions = [e["position"] for e in log]
        if positions != list(range(1, head + 1)):
            fail("the log is not positions 1..%d" % head)
        _, head_b = read_log(b.port)
        if head_b != head:
            fail("node B's head %d differs from A's %d" % (head_b, head))
        by_position = {e["position"]: e for e in log}
        for name in ("a", "b"):
            s = subscribers[name]
            if not s.wait_for(head, 60):
                fail("the subscriber on %s stopped at %s (%s)"
                     % (name, s.positions()[-1:], s.ended))
            with s.lock:
                seen = list(s.events)
            if [e["position"] for e in seen] != list(range(1, len(seen) + 1)) or len(seen) < head:
                fail("the subscriber on %s did not see positions 1..%d in order" % (name, head))
            for e in seen[:head]:
                if e["id"] != by_position[e["position"]]["id"]:
                    fail("the subscriber on %s saw another event at position %d"
                         % (name, e["position"]))
        # Node C's subscriber saw a prefix of the log, in order, until C died.
        seen_c = subscribers["c"].positions()
        if seen_c != list(range(1, len(seen_c) + 1)):
            fail("the subscriber on C saw positions out of order")

        ids_in_log = {}
        for e in log:
            if e["id"] in ids_in_log:
                fail("event id %s is in the log twice" % e["id"])
            ids_in_log[e["id"]] = e
        acks = []
        for _, path in workers:
            with open(path) as f:
                acks.extend(json.loads(line) for line in f)
        if len(acks) != worker_count * operations:
            fail("%d of %d requests were acknowledged" % (len(acks), worker_count * operations))
        for ack in acks:
            for i, event_id in enumerate(ack["ids"]):
                e = ids_in_log.get(event_id)
                if e is None:
                    fail("acknowledged event %s is not in the log" % event_id)
                if e["stream"] != ack["streams"][i]:
                    fail("event %s is in stream %s, not %s" % (event_id, e["stream"],
                                                                ack["streams"][i]))
                if not ack["first"] <= e["position"] <= ack["last"]:
                    fail("event %s is at %d, acknowledged at %d..%d"
                         % (event_id, e["position"], ack["first"], ack["last"]))
        client_events = sum(len(ack["ids"]) for ack in acks)
        client_in_log = sum(1 for e in log
                            if e["type"] in ("single", "tx", "counter", "counter-log"))
        if client_in_log != client_events:
            fail("the log holds %d client events, %d were acknowledged"
                 % (client_in_log, client_events))
        counter_acks = [ack for ack in acks if ack["kind"] == "counter"]
        status, counter = request(a.port, "GET", "/v1/streams/counter?limit=1000")
        if status != 200:
            fail("reading the shared stream: HTTP %d" % status)
        revisions = [e["revision"] for e in counter["events"]]
        if revisions != list(range(len(counter_acks))):
            fail("the shared stream has revisions %s for %d appends"
                 % (revisions[:5], len(counter_acks)))
        if sorted(ack["revision"] for ack in counter_acks) != revisions:
            fail("the shared stream's acknowledged revisions are not one each")
        conflicts = sum(ack["conflicts"] for ack in counter_acks)
        # A counter event written with a counter-log event sits right before it: one
        # transaction, whole or not at all, also when its expectation failed on another node.
        for ack in counter_acks:
            if len(ack["ids"]) == 2:
                first, second = ids_in_log[ack["ids"][0]], ids_in_log[ack["ids"][1]]
                if second["position"] != first["position"] + 1 or first["tx"] != second["tx"]:
                    fail("a transaction across the shared stream was split: %s, %s"
                         % (first, second))
        logged = sum(1 for e in log if e["stream"] == "counter-log")
        if logged != sum(1 for ack in counter_acks if len(ack["ids"]) == 2):
            fail("counter-log has %d events for %d transactions" % (
                logged, sum(1 for ack in counter_acks if len(ack["ids"]) == 2)))
        # "resent" counts on in each client process: its last acknowledgement has the total.
        resent = sum(max([0] + [json.loads(line)["resent"] for line in open(path)])
                     for _, path in workers)
        replays_after_kill = sum(1 for ack in acks if ack["replay"])
        if resent == 0:
            fail("no request was sent again after node C died")
        status, report = request(b.port, "POST", "/v1/integrity/verify", {})
        if status != 200 or not report["ok"]:
            fail("verify on B: HTTP %d %s" % (status, report))
        for n in (a, b):
            n.proc.terminate()
            n.proc.wait(timeout=60)

        print("5. tokens: made on one node, they work on the others; revoked, they stop")
        made = subprocess.run([tt, "token", "create", "--store", url, "--store-schema", SCHEMA,
                               "--scope", "admin", "--name", "ops"], capture_output=True,
                              text=True)
        if made.returncode != 0:
            fail("token create --store: %s" % made.stderr)
        admin = made.stdout.strip()
        d, e = Node(tt, url, work, "d", auth="on"), Node(tt, url, work, "e", auth="on")
        nodes += [d, e]
        d.wait_listening()
        e.wait_listening()
        status, created = request(d.port, "POST", "/v1/tokens",
                                  {"name": "reader", "scopes": ["read"]}, token=admin)
        if status != 201:
            fail("token create on D: HTTP %d %s" % (status, created))
        reader = created["token"]
        status, _ = request(e.port, "GET", "/v1/log?limit=1", token=reader)
        if status != 200:
            fail("a token made on D a moment ago was refused on E: HTTP %d" % status)
        status, _ = request(d.port, "DELETE", "/v1/tokens/" + created["id"], token=admin)
        if status != 200:
            fail("token revoke on D: HTTP %d" % status)
        deadline = time.time() + 30
        while True:
            status, _ = request(e.port, "GET", "/v1/log?limit=1", token=reader)
            if status == 401:
                break
            if time.time() > deadline:
                fail("a token revoked on D still works on E (HTTP %d)" % status)
            time.sleep(0.2)
        for n in (d, e):
            n.proc.terminate()
            n.proc.wait(timeout=60)
        verified = subprocess.run([tt, "verify", "--store", url, "--store-schema", SCHEMA],
                                  capture_output=True, text=True)
        if verified.returncode != 0:
            fail("timetrail verify --store: %s %s" % (verified.stdout, verified.stderr))
        print("   %d positions; %d acknowledged requests (%d client events); %d appends to the "
              "shared stream with %d conflicts across nodes; %d sends again to another node, "
              "%d answered as replays; every subscriber of a live node saw 1..%d in order; "
              "node C's saw 1..%d before it died"
              % (head, len(acks), client_events, len(counter_acks), conflicts, resent,
                 replays_after_kill, head, len(seen_c)))
        print("ok")
    finally:
        for proc, _ in workers:
            if proc.poll() is None:
                proc.kill()
        for n in nodes:
            if n.proc.poll() is None:
                n.proc.kill()
                n.proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        main()
