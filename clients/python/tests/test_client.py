"""Tests of the Python client against a real `timetrail serve` on a temporary data directory.

The server binary is $TIMETRAIL_BIN (CMake passes it); run with
`PYTHONPATH=clients/python python3 -m unittest discover -s clients/python/tests -v`.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import uuid
from typing import Any, List, Optional

from timetrail import (Client, ConnectionFailed, NotFound, Subscription, TimetrailError,
                       WrongExpectedRevision, new_event, parse_time, stream_append)

BIN = os.environ.get("TIMETRAIL_BIN", "")


class Server:
    """One `timetrail serve` process on a data directory."""

    def __init__(self, data_dir: str, log_path: str) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""

    def start(self, listen: str = "127.0.0.1:0", *extra: str) -> "Server":
        deadline = time.monotonic() + 20
        while True:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [BIN, "serve", "--data", self.data_dir, "--listen", listen, *extra],
                    stdout=subprocess.PIPE, stderr=log)
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline().decode().strip()
            if line.startswith("listening on "):
                self.url = line[len("listening on "):]
                # keep reading stdout so the server never blocks on a full pipe
                threading.Thread(target=self._drain, args=(self.proc.stdout,),
                                 daemon=True).start()
                return self
            self.proc.wait(timeout=10)
            if time.monotonic() > deadline:  # e.g. the old port still in use after a restart
                raise RuntimeError(f"timetrail serve did not start: {line!r}, see {self.log_path}")
            time.sleep(0.2)

    @staticmethod
    def _drain(stdout: Any) -> None:
        stdout.read()
        stdout.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.assert_code(self.proc.wait(timeout=30))

    @staticmethod
    def assert_code(code: int) -> None:
        if code != 0:
            raise RuntimeError(f"timetrail serve exited {code}")


def drain(sub: Subscription, out: "queue.Queue[Any]") -> threading.Thread:
    """Iterates `sub` in a thread, putting each event (or the exception that ended it) in out."""

    def run() -> None:
        try:
            for event in sub:
                out.put(event)
        except Exception as e:  # noqa: BLE001 - handed to the test
            out.put(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def take(out: "queue.Queue[Any]", n: int, timeout: float = 15.0) -> List[dict]:
    events = []
    for _ in range(n):
        item = out.get(timeout=timeout)
        if isinstance(item, Exception):
            raise item
        events.append(item)
    return events


def unique(prefix: str) -> str:
    return f"{prefix}/{uuid.uuid4().hex[:8]}"


@unittest.skipUnless(BIN and os.path.exists(BIN), "TIMETRAIL_BIN names no timetrail binary")
class ClientTest(unittest.TestCase):
    tmp: str
    server: Server
    tt: Client

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.mkdtemp(prefix="timetrail-py-")
        cls.server = Server(os.path.join(cls.tmp, "data"), os.path.join(cls.tmp, "server.log"))
        cls.server.start()
        cls.tt = Client(cls.server.url, timeout=30)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- writing and reading streams ------------------------------------------------------------

    def test_append_read_pages_and_info(self) -> None:
        stream = unique("friend")  # a "/" in the name travels as %2F
        w = self.tt.append(stream, [new_event("$put", {"name": "Rachel", "n": 0}),
                                    new_event("$patch", {"n": 1}),
                                    new_event("$patch", {"n": 2})],
                           expected_revision="no_stream")
        self.assertEqual((w["stream"], w["first_revision"], w["revision"]), (stream, 0, 2))
        self.assertEqual(w["position"] - w["first_position"], 2)
        self.assertFalse(w["idempotent_replay"])
        for key in ("tx", "recorded_at"):
            self.assertIn(key, w)

        page = self.tt.read_stream(stream, limit=2)
        self.assertEqual([e["revision"] for e in page["events"]], [0, 1])
        self.assertEqual(page["next"], 2)
        page2 = self.tt.read_stream(stream, from_revision=page["next"], limit=2)
        self.assertEqual([e["revision"] for e in page2["events"]], [2])
        self.assertIsNone(page2["next"])
        back = self.tt.read_stream(stream, backward=True, limit=1)
        self.assertEqual([e["revision"] for e in back["events"]], [2])
        self.assertEqual([e["revision"] for e in self.tt.iter_stream(stream, page_size=1)],
                         [0, 1, 2])
        self.assertEqual([e["revision"] for e in self.tt.iter_stream(stream, backward=True,
                                                                     page_size=2)], [2, 1, 0])
        event = page["events"][0]
        for key in ("stream", "revision", "position", "id", "type", "data", "recorded_at",
                    "valid_from", "tx", "hash"):
            self.assertIn(key, event)
        self.assertEqual(event["data"], {"name": "Rachel", "n": 0})

        info = self.tt.stream_info(stream)
        self.assertEqual((info["stream"], info["exists"], info["revision"], info["position"],
                          info["deleted"]), (stream, True, 2, w["position"], False))
        empty = self.tt.stream_info(unique("nobody"))
        self.assertEqual((empty["exists"], empty["revision"]), (False, None))
        with self.assertRaises(NotFound) as cm:
            self.tt.read_stream(unique("nobody"))
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "not_found"))

        # an expected revision number, then exists
        w2 = self.tt.append(stream, [new_event("$patch", {"n": 3})], expected_revision=2)
        self.assertEqual(w2["revision"], 3)
        self.tt.append(stream, [new_event("$patch", {"n": 4})], expected_revision="exists")
        self.assertEqual(self.tt.entity(stream)["state"], {"name": "Rachel", "n": 4})

    def test_wrong_expected_revision(self) -> None:
        stream = unique("conflict")
        self.tt.append(stream, [new_event("$put", {})], expected_revision="no_stream")
        with self.assertRaises(WrongExpectedRevision) as cm:
            self.tt.append(stream, [new_event("$put", {})], expected_revision="no_stream")
        e = cm.exception
        self.assertIsInstance(e, TimetrailError)
        self.assertEqual((e.status, e.code, e.stream, e.actual_revision),
                         (409, "wrong_expected_revision", stream, 0))
        self.assertIn(stream, e.message)
        with self.assertRaises(WrongExpectedRevision) as cm2:
            self.tt.append(unique("conflict"), [new_event("$put", {})], expected_revision="exists")
        self.assertIsNone(cm2.exception.actual_revision)
        self.assertEqual(self.tt.stream_info(stream)["revision"], 0)  # nothing was written

    def test_idempotent_retry_and_event_by_id(self) -> None:
        stream = unique("retry")
        events = [new_event("created", {"v": 1}, metadata={"actor": "joey"}),
                  new_event("renamed", {"v": 2})]
        first = self.tt.append(stream, events, expected_revision="no_stream")
        again = self.tt.append(stream, events, expected_revision="no_stream")
        self.assertFalse(first["idempotent_replay"])
        self.assertTrue(again["idempotent_replay"])
        self.assertEqual((again["first_position"], again["position"], again["revision"]),
                         (first["first_position"], first["position"], first["revision"]))
        self.assertEqual(len(list(self.tt.iter_stream(stream))), 2)

        got = self.tt.get_event(events[0]["id"])
        self.assertEqual((got["id"], got["stream"], got["type"], got["data"], got["metadata"]),
                         (events[0]["id"], stream, "created", {"v": 1}, {"actor": "joey"}))
        with self.assertRaises(NotFound):
            self.tt.get_event(str(uuid.uuid4()))
        with self.assertRaises(TimetrailError) as cm:
            self.tt.get_event("not-a-uuid")
        self.assertEqual((cm.exception.status, cm.exception.code), (400, "invalid_argument"))

        # the same id with other company is not a clean retry
        with self.assertRaises(TimetrailError) as cm2:
            self.tt.append(stream, [events[0], new_event("extra")])
        self.assertEqual((cm2.exception.status, cm2.exception.code), (409, "duplicate_event"))

    def test_invalid_argument(self) -> None:
        with self.assertRaises(TimetrailError) as cm:
            self.tt.append(unique("bad"), [{"type": "$nope"}])
        self.assertEqual((cm.exception.status, cm.exception.code), (400, "invalid_argument"))
        with self.assertRaises(TimetrailError) as cm2:
            self.tt.read_log(limit=0)
        self.assertEqual(cm2.exception.status, 400)

    def test_transaction_and_log(self) -> None:
        prefix = unique("acct") + "/"
        a, b = prefix + "a", prefix + "b"
        t = self.tt.transaction([
            stream_append(a, [new_event("opened", {"balance": 10})], "no_stream"),
            stream_append(b, [new_event("opened", {"balance": 0})], "no_stream")])
        self.assertFalse(t["idempotent_replay"])
        self.assertEqual([s["stream"] for s in t["streams"]], [a, b])
        self.assertEqual(t["position"] - t["first_position"], 1)
        t2 = self.tt.transaction([
            stream_append(a, [new_event("debited", {"amount": 10})], 0),
            stream_append(b, [new_event("credited", {"amount": 10})], 0)])
        self.assertEqual([s["revision"] for s in t2["streams"]], [1, 1])
        # a wrong expected revision in one part stores nothing
        with self.assertRaises(WrongExpectedRevision):
            self.tt.transaction([stream_append(a, [new_event("debited")], 1),
                                 stream_append(b, [new_event("credited")], 0)])
        self.assertEqual(self.tt.stream_info(a)["revision"], 1)

        page = self.tt.read_log(from_position=t["first_position"], limit=2, stream_prefix=prefix)
        self.assertEqual([e["position"] for e in page["events"]],
                         [t["first_position"], t["position"]])
        self.assertGreaterEqual(page["head"], t2["position"])
        self.assertIn("next", page)
        typed = list(self.tt.iter_log(from_position=t["first_position"], stream_prefix=prefix,
                                      types=["debited", "credited"], page_size=1))
        self.assertEqual([(e["stream"], e["type"]) for e in typed],
                         [(a, "debited"), (b, "credited")])
        everything = list(self.tt.iter_log(page_size=3))
        positions = [e["position"] for e in everything]
        self.assertEqual(positions, list(range(1, len(positions) + 1)))

    def test_transaction_batch_stops_at_the_first_failure(self) -> None:
        stream = unique("batch")
        ok = self.tt.transaction_batch([[stream_append(stream, [new_event("opened")],
                                                       "no_stream")],
                                        [stream_append(stream, [new_event("used")], 0)]])
        self.assertIsNone(ok["failed"])
        self.assertEqual([r["status"] for r in ok["results"]], [201, 201])
        self.assertEqual(ok["results"][1]["committed"]["streams"][0]["revision"], 1)
        bad = self.tt.transaction_batch([[stream_append(stream, [new_event("used")], 1)],
                                         [stream_append(stream, [new_event("used")], 7)],
                                         [stream_append(stream, [new_event("used")])]])
        self.assertEqual(bad["failed"], 1)
        self.assertEqual(bad["results"][1]["status"], 409)
        self.assertEqual(bad["results"][1]["error"]["error"], "wrong_expected_revision")
        self.assertEqual(self.tt.stream_info(stream)["revision"], 2)  # the prefix, no more
        # a malformed transaction (an unknown field) refuses the whole batch: nothing is stored
        with self.assertRaises(TimetrailError) as cm:
            self.tt.transaction_batch([[stream_append(stream, [new_event("used")])],
                                       [stream_append(stream, [{"type": "x", "bogus": 1}])]])
        self.assertEqual((cm.exception.status, cm.exception.code), (400, "invalid_argument"))
        self.assertEqual(self.tt.stream_info(stream)["revision"], 2)
        # an event the store rejects (a reserved type) fails its transaction: the prefix stays
        partial = self.tt.transaction_batch([[stream_append(stream, [new_event("used")])],
                                             [stream_append(stream, [{"type": "$bad"}])]])
        self.assertEqual(partial["failed"], 1)
        self.assertEqual(partial["results"][1]["error"]["error"], "invalid_argument")
        self.assertEqual(self.tt.stream_info(stream)["revision"], 3)

    # -- temporal queries -----------------------------------------------------------------------

    def test_entity_at_points(self) -> None:
        stream = unique("person")
        w0 = self.tt.append(stream, [new_event("$put", {"city": "New York"},
                                               valid_from="2020-01-01T00:00:00Z")])
        time.sleep(0.01)
        w1 = self.tt.append(stream, [new_event("$patch", {"city": "Paris"},
                                               metadata={"actor": "monica"},
                                               valid_from="2024-06-01T00:00:00Z")])
        latest = self.tt.entity(stream, min_position=w1["position"])
        self.assertEqual((latest["stream"], latest["exists"], latest["state"],
                          latest["revision"], latest["position"]),
                         (stream, True, {"city": "Paris"}, 1, w1["position"]))
        self.assertEqual(latest["metadata"], {"actor": "monica"})
        self.assertEqual(parse_time(latest["valid_from"]).year, 2024)
        self.assertIn("recorded_at", latest)
        self.assertEqual(self.tt.entity(stream, at_revision=0)["state"], {"city": "New York"})
        self.assertEqual(self.tt.entity(stream, at_position=w0["position"])["state"],
                         {"city": "New York"})
        self.assertEqual(self.tt.entity(stream, as_of=parse_time(w0["recorded_at"]))["state"],
                         {"city": "New York"})
        self.assertEqual(self.tt.entity(stream, as_of=w1["recorded_at"])["state"],
                         {"city": "Paris"})
        self.assertEqual(self.tt.entity(stream, valid_at="2022-01-01")["state"],
                         {"city": "New York"})
        self.assertEqual(self.tt.entity(stream, valid_at="2025-01-01")["state"],
                         {"city": "Paris"})
        # valid in 2025, as known when only the first event was recorded
        known = self.tt.entity(stream, valid_at="2025-01-01", known_at=w0["recorded_at"])
        self.assertEqual(known["state"], {"city": "New York"})
        before = self.tt.entity(stream, valid_at="2019-01-01")
        self.assertFalse(before["exists"])

    def test_history_of_a_property_after_three_changes(self) -> None:
        stream = unique("friend")
        self.tt.append(stream, [new_event("$put", {"name": "Rachel", "location": "New York"},
                                          metadata={"actor": "joey"})])
        self.tt.append(stream, [new_event("$patch", {"age": 30})])  # location unchanged
        self.tt.append(stream, [new_event("$patch", {"location": "Paris"},
                                          metadata={"actor": "ross"})])
        self.tt.append(stream, [new_event("$patch", {"location": "London"})])
        last = self.tt.append(stream, [new_event("$patch", {"location": "Rome"})])

        h = self.tt.history(stream, "/location", min_position=last["position"])
        self.assertEqual((h["stream"], h["path"], h["cursor"]), (stream, "/location", None))
        values = [i["value"] for i in h["intervals"]]
        self.assertEqual(values, ["New York", "Paris", "London", "Rome"])
        first = h["intervals"][0]
        self.assertEqual((first["exists"], first["from"]["revision"], first["to"]["revision"]),
                         (True, 0, 2))
        self.assertEqual(first["metadata"], {"actor": "joey"})
        self.assertIn("recorded_at", first["from"])
        self.assertIsNone(h["intervals"][-1]["to"])

        page = self.tt.history(stream, "/location", limit=1)
        self.assertEqual([i["value"] for i in page["intervals"]], ["New York"])
        self.assertIsInstance(page["cursor"], str)
        page2 = self.tt.history(stream, "/location", limit=1, cursor=page["cursor"])
        self.assertEqual([i["value"] for i in page2["intervals"]], ["Paris"])
        self.assertEqual([i["value"] for i in self.tt.iter_history(stream, "/location",
                                                                   page_size=1)], values)
        vt = self.tt.history(stream, "/location", valid_time=True)
        self.assertEqual([i["value"] for i in vt["intervals"]], values)
        with self.assertRaises(TimetrailError) as cm:
            self.tt.history(stream, "/location", limit=1, cursor="bogus")
        self.assertEqual(cm.exception.status, 400)

    def test_diff_with_events(self) -> None:
        stream = unique("doc")
        self.tt.append(stream, [new_event("$put", {"title": "a", "tags": ["x"]})])
        w0 = self.tt.append(stream, [new_event("$patch", {"title": "b"})])
        self.tt.append(stream, [new_event("$patch", {"title": "c", "extra": 1})])
        d = self.tt.diff(stream, from_revision=0, to_revision=2)
        self.assertEqual(d["stream"], stream)
        self.assertEqual(d["from"]["state"], {"title": "a", "tags": ["x"]})
        self.assertEqual(d["to"]["state"], {"title": "c", "tags": ["x"], "extra": 1})
        self.assertIn({"op": "replace", "path": "/title", "value": "c"}, d["patch"])
        self.assertIn({"op": "add", "path": "/extra", "value": 1}, d["patch"])
        self.assertNotIn("events", d)

        de = self.tt.diff(stream, from_revision=0, events=True)
        self.assertEqual([e["revision"] for e in de["events"]], [1, 2])
        self.assertIsNone(de["cursor"])
        p1 = self.tt.diff(stream, from_revision=0, events=True, limit=1)
        self.assertEqual([e["revision"] for e in p1["events"]], [1])
        p2 = self.tt.diff(stream, from_revision=0, events=True, limit=1, cursor=p1["cursor"])
        self.assertEqual([e["revision"] for e in p2["events"]], [2])
        self.assertIsNone(p2["cursor"])

        by_time = self.tt.diff(stream, from_time=w0["recorded_at"], to_time=w0["recorded_at"])
        self.assertEqual(by_time["patch"], [])
        with self.assertRaises(TimetrailError) as cm:
            self.tt.diff(stream, from_revision=0, limit=5)  # limit needs events=True
        self.assertEqual(cm.exception.code, "invalid_argument")

    def test_activity_filters_and_paging(self) -> None:
        prefix = unique("act") + "/"
        actor = "actor-" + uuid.uuid4().hex[:6]
        for i in range(3):
            self.tt.append(prefix + str(i), [new_event("touched", {"i": i},
                                                       metadata={"actor": actor})])
        self.tt.append(prefix + "x", [new_event("other", {}, metadata={"actor": actor})])
        self.tt.append(prefix + "y", [new_event("touched", {}, metadata={"actor": "else"})])

        mine = self.tt.activity(actor=actor)
        self.assertEqual([e["type"] for e in mine["events"]], ["other"] + ["touched"] * 3)
        positions = [e["position"] for e in mine["events"]]
        self.assertEqual(positions, sorted(positions, reverse=True))  # newest first
        self.assertIsNone(mine["cursor"])
        typed = self.tt.activity(stream_prefix=prefix, types=["touched"])
        self.assertEqual(len(typed["events"]), 4)
        page = self.tt.activity(actor=actor, limit=2)
        self.assertEqual(len(page["events"]), 2)
        self.assertIsNotNone(page["cursor"])
        rest = self.tt.activity(actor=actor, limit=2, cursor=page["cursor"])
        self.assertEqual([e["position"] for e in page["events"] + rest["events"]], positions)
        self.assertEqual([e["position"] for e in self.tt.iter_activity(actor=actor,
                                                                        page_size=3)], positions)
        since = mine["events"][0]["recorded_at"]
        self.assertEqual([e["type"] for e in self.tt.activity(actor=actor, since=since)["events"]],
                         ["other"])
        self.assertEqual(self.tt.activity(actor=actor, until="2000-01-01")["events"], [])

    def test_revert(self) -> None:
        stream = unique("revert")
        self.tt.append(stream, [new_event("$put", {"city": "New York"})])
        self.tt.append(stream, [new_event("$patch", {"city": "Paris"})])
        with self.assertRaises(WrongExpectedRevision):
            self.tt.revert(stream, to_revision=0, expected_revision=0)
        r = self.tt.revert(stream, to_revision=0, expected_revision=1, actor="monica",
                           reason="the move was a mistake")
        self.assertEqual((r["stream"], r["revision"]), (stream, 2))
        self.assertEqual(self.tt.entity(stream)["state"], {"city": "New York"})
        last = self.tt.read_stream(stream, backward=True, limit=1)["events"][0]
        self.assertEqual(last["type"], "$put")

    def test_integrity_and_consistency_tokens(self) -> None:
        w = self.tt.append(unique("chain"), [new_event("x", {})])
        head = self.tt.integrity_head()
        self.assertGreaterEqual(head["position"], w["position"])
        self.assertEqual(len(head["hash"]), 64)
        v = self.tt.verify()
        self.assertTrue(v["ok"])
        self.assertIsNone(v["first_bad_position"])
        self.assertGreaterEqual(v["events_checked"], w["position"])
        self.assertIn("position", v["head"])
        self.assertEqual(self.tt.health()["status"], "ok")

        # a read waits for its token; one beyond the head times out
        self.assertTrue(self.tt.stream_info(w["stream"], min_position=w["position"])["exists"])
        with self.assertRaises(TimetrailError) as cm:
            self.tt.read_log(min_position=head["position"] + 1000, timeout_ms=100)
        self.assertEqual((cm.exception.status, cm.exception.code), (504, "timeout"))

    def test_consumers(self) -> None:
        name = "c-" + uuid.uuid4().hex[:8]
        with self.assertRaises(NotFound):
            self.tt.consumer(name)
        w = self.tt.append(unique("cons"), [new_event("x")])
        self.assertEqual(self.tt.ack(name, w["position"]), {"name": name,
                                                            "position": w["position"]})
        self.assertEqual(self.tt.consumer(name)["position"], w["position"])
        # a subscription with the consumer's name starts after its acknowledged position
        prefix = w["stream"].rsplit("/", 1)[0] + "/"
        after = self.tt.append(w["stream"], [new_event("y")])
        out: "queue.Queue[Any]" = queue.Queue()
        sub = self.tt.subscribe(consumer=name, stream_prefix=prefix)
        thread = drain(sub, out)
        try:
            self.assertEqual(take(out, 1)[0]["position"], after["position"])
        finally:
            sub.close()
            thread.join(timeout=10)

    def test_subscription_receives_live_events(self) -> None:
        prefix = unique("live") + "/"
        before = self.tt.append(prefix + "a", [new_event("old", {"n": 0})])
        out: "queue.Queue[Any]" = queue.Queue()
        sub = self.tt.subscribe(from_position=before["position"], stream_prefix=prefix)
        thread = drain(sub, out)
        try:
            self.assertEqual(take(out, 1)[0]["type"], "old")
            written = [self.tt.append(prefix + "b", [new_event("new", {"n": n})])
                       for n in range(1, 4)]
            got = take(out, 3)
            self.assertEqual([e["position"] for e in got], [w["position"] for w in written])
            self.assertEqual([e["data"]["n"] for e in got], [1, 2, 3])
            self.assertEqual(sub.position, written[-1]["position"])
        finally:
            sub.close()
            thread.join(timeout=10)
        self.assertFalse(thread.is_alive())


@unittest.skipUnless(BIN and os.path.exists(BIN), "TIMETRAIL_BIN names no timetrail binary")
class SubscriptionRestartTest(unittest.TestCase):
    def test_resumes_after_server_restart_without_gaps_or_repeats(self) -> None:
        tmp = tempfile.mkdtemp(prefix="timetrail-py-restart-")
        self.addCleanup(shutil.rmtree, tmp, True)
        server = Server(os.path.join(tmp, "data"), os.path.join(tmp, "server.log")).start()
        self.addCleanup(server.stop)
        tt = Client(server.url)
        port = server.url.rsplit(":", 1)[1]

        tt.append("r/1", [new_event("e", {"n": n}) for n in range(2)])
        out: "queue.Queue[Any]" = queue.Queue()
        sub = tt.subscribe(stream_prefix="r/", retry_delay=0.05, max_retry_delay=0.5)
        thread = drain(sub, out)
        self.addCleanup(thread.join, 10)
        self.addCleanup(sub.close)
        got = take(out, 2)  # stored events
        tt.append("r/1", [new_event("e", {"n": n}) for n in range(2, 4)])
        got += take(out, 2)  # live events

        server.stop()  # SIGTERM: ends the subscription; the client keeps reconnecting
        # nothing can be written while it is down
        with self.assertRaises(TimetrailError) as cm:
            tt.append("r/1", [new_event("e", {"n": -1})])
        self.assertIsNone(cm.exception.status)
        server.start(listen=f"127.0.0.1:{port}")
        self.assertEqual(server.url, tt.base_url)
        for n in range(4, 7):
            tt.append("r/1", [new_event("e", {"n": n})])
        got += take(out, 3)

        self.assertEqual([e["data"]["n"] for e in got], list(range(7)))
        self.assertEqual([e["position"] for e in got], list(range(1, 8)))
        self.assertEqual([e["revision"] for e in got], list(range(7)))
        self.assertGreaterEqual(sub.connections, 2)
        self.assertEqual(sub.duplicates_skipped, 0)  # the server resumed after Last-Event-ID
        with self.assertRaises(queue.Empty):
            out.get(timeout=0.5)  # and nothing came twice

    def test_gives_up_without_a_server(self) -> None:
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        sub = Client(f"http://127.0.0.1:{port}").subscribe(retry_delay=0.05,
                                                             give_up_after=0.3)
        started = time.monotonic()
        with self.assertRaises(ConnectionFailed):
            next(iter(sub))
        self.assertLess(time.monotonic() - started, 10)
        with self.assertRaises(ConnectionFailed):
            next(iter(Client(f"http://127.0.0.1:{port}").subscribe(reconnect=False)))


@unittest.skipUnless(BIN and os.path.exists(BIN), "TIMETRAIL_BIN names no timetrail binary")
class AuthenticationTest(unittest.TestCase):
    def test_token_scopes(self) -> None:
        tmp = tempfile.mkdtemp(prefix="timetrail-py-auth-")
        self.addCleanup(shutil.rmtree, tmp, True)
        data = os.path.join(tmp, "data")
        admin = subprocess.run([BIN, "token", "create", "--data", data, "--scope", "admin",
                                "--name", "ops"], check=True, capture_output=True,
                               text=True).stdout.strip()
        server = Server(data, os.path.join(tmp, "server.log")).start("127.0.0.1:0", "--auth",
                                                                    "on")
        self.addCleanup(server.stop)

        with self.assertRaises(TimetrailError) as cm:
            Client(server.url).stream_info("orders/1")
        self.assertEqual((cm.exception.status, cm.exception.code), (401, "unauthenticated"))

        ops = Client(server.url, token=admin)
        w = ops.append("orders/1", [new_event("$put", {"total": 5})])
        created = ops.request("POST", "/v1/tokens", body={"name": "dashboard",
                                                          "scopes": ["read"]})
        reader = Client(server.url, token=created["token"])
        self.assertEqual(reader.entity("orders/1", min_position=w["position"])["state"],
                         {"total": 5})
        with self.assertRaises(TimetrailError) as cm2:
            reader.append("orders/1", [new_event("placed")])
        self.assertEqual((cm2.exception.status, cm2.exception.code), (403, "forbidden"))
        self.assertTrue(ops.verify()["ok"])
        out: "queue.Queue[Any]" = queue.Queue()
        sub = reader.subscribe(stream_prefix="orders/")  # the token goes along
        thread = drain(sub, out)
        try:
            self.assertEqual(take(out, 1)[0]["position"], w["position"])
        finally:
            sub.close()
            thread.join(timeout=10)
        with self.assertRaises(TimetrailError) as cm3:
            list(Client(server.url).subscribe())
        self.assertEqual(cm3.exception.status, 401)


if __name__ == "__main__":
    unittest.main()
