"""A real `timetrail serve --capture` on the PostgreSQL cluster tests/support/with_postgres.sh
started (TIMETRAIL_PG_URL), for the tests of the ORM integrations."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import urllib.parse
from typing import Any, Dict, List

import psycopg2

from test_client import Server
from timetrail import Client, NotFound

BIN = os.environ.get("TIMETRAIL_BIN", "")
PG_URL = os.environ.get("TIMETRAIL_PG_URL", "")
CONTEXT_SQL = os.path.join(os.path.dirname(__file__), "..", "..", "..", "sql",
                           "timetrail_context.sql")


def require_environment() -> None:
    # Not a skip: run without a cluster or a binary, these tests fail and say why.
    if not (BIN and os.path.exists(BIN)):
        raise RuntimeError("TIMETRAIL_BIN must name the timetrail binary")
    if not PG_URL:
        raise RuntimeError("TIMETRAIL_PG_URL is not set: run under tests/support/with_postgres.sh")


def sql(statement: str, *params: Any) -> List[tuple]:
    """Runs one statement in autocommit on a plain connection (no context comment)."""
    with psycopg2.connect(PG_URL) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement, params or None)
            return cur.fetchall() if cur.description else []


class Capture:
    """The server capturing the cluster into a temporary data directory, with its own slot and
    publication (``slot``), and sql/timetrail_context.sql installed in the source."""

    def __init__(self, slot: str) -> None:
        require_environment()
        self.slot = slot
        self.tmp = tempfile.mkdtemp(prefix=f"timetrail-{slot}-")
        with open(CONTEXT_SQL, encoding="utf-8") as f:
            sql(f.read())
        # The publication first (the capture reuses it): a table created later is in it.
        sql(f"CREATE PUBLICATION {slot} FOR ALL TABLES")
        self.server = Server(os.path.join(self.tmp, "data"), os.path.join(self.tmp, "server.log"))
        self.server.start("127.0.0.1:0", "--auth", "off", "--capture", PG_URL,
                          "--capture-slot", slot)
        self.tt = Client(self.server.url, timeout=30)
        # Changes are captured from the slot's creation on: wait for it.
        self.poll(lambda: sql("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", slot),
                  f"replication slot {slot}")

    def stop(self) -> None:
        self.server.stop()
        sql("SELECT pg_drop_replication_slot(%s)", self.slot)
        sql(f"DROP PUBLICATION {self.slot}")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def poll(self, done: Any, what: str, deadline_s: float = 60) -> Any:
        deadline = time.monotonic() + deadline_s
        while True:
            result = done()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {deadline_s} s for {what}; "
                                     f"server log: {self.server.log_path}")
            time.sleep(0.05)

    def events(self, stream: str, count: int) -> List[Dict[str, Any]]:
        """The stream's events once it has at least ``count`` (the capture is asynchronous)."""
        def read() -> List[Dict[str, Any]]:
            try:
                events = self.tt.read_stream(stream, limit=1000)["events"]
            except NotFound:
                return []
            return events if len(events) >= count else []
        return self.poll(read, f"{count} events in {stream}")

    def last(self, stream: str, count: int) -> Dict[str, Any]:
        """The metadata of the stream's ``count``-th event (its latest change in the tests)."""
        return self.events(stream, count)[count - 1]["metadata"]

    def table(self, name: str, columns: str = "id int PRIMARY KEY, status text, note text") -> str:
        """Creates a table (in the publication) with the context trigger; returns its name."""
        sql(f"CREATE TABLE {name} ({columns})")
        sql("SELECT timetrail.track_context_for_publication(%s)", self.slot)
        return name


def stream(tbl: str, key: Any) -> str:
    return f"public.{tbl}/{key}"


def pg_settings() -> Dict[str, Any]:
    url = urllib.parse.urlsplit(PG_URL)
    return {"host": url.hostname, "port": url.port, "user": url.username,
            "dbname": url.path.lstrip("/")}
