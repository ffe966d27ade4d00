"""SQLAlchemy and WSGI: writes made through the ORM, Core and raw SQL while a timetrail.context
is active are captured by a real `timetrail serve --capture` with that context in each event's
metadata. Runs under tests/support/with_postgres.sh (CTest: python_orm_context)."""

from __future__ import annotations

import io
import json
import threading
import unittest
import urllib.request
import uuid
import wsgiref.simple_server
import wsgiref.util
from typing import Any, Dict, List

from sqlalchemy import Column, Integer, Text, create_engine, text
from sqlalchemy.orm import Session, declarative_base

import timetrail
import timetrail.sqlalchemy
from capture_fixture import PG_URL, Capture, stream
from timetrail.wsgi import ContextMiddleware

capture: Capture
engine: Any
Base = declarative_base()


class Order(Base):  # type: ignore[misc, valid-type]
    __tablename__ = "sa_orders"
    id = Column(Integer, primary_key=True)
    status = Column(Text)
    note = Column(Text)


class Item(Base):  # type: ignore[misc, valid-type]
    __tablename__ = "sa_items"
    id = Column(Integer, primary_key=True)
    status = Column(Text)
    note = Column(Text)


def setUpModule() -> None:
    global capture, engine
    capture = Capture("py_sqlalchemy")
    capture.table("sa_orders")
    capture.table("sa_items")
    engine = timetrail.sqlalchemy.instrument(create_engine(PG_URL, future=True))
    timetrail.sqlalchemy.instrument(engine)  # a second call adds nothing


def tearDownModule() -> None:
    engine.dispose()
    capture.stop()


def orders(key: int) -> str:
    return stream("sa_orders", key)


def items(key: int) -> str:
    return stream("sa_items", key)


class SqlAlchemyContextTest(unittest.TestCase):
    def tearDown(self) -> None:
        self.assertEqual(timetrail.current_context(), {})

    def test_orm_save(self) -> None:
        with timetrail.context(actor="alice", reason="refund", request_id="r-1"):
            with Session(engine) as session, session.begin():
                session.add(Order(id=1, status="new"))
        with timetrail.context(actor="bob"), Session(engine) as session, session.begin():
            session.get(Order, 1).status = "paid"
        first, second = [e["metadata"] for e in capture.events(orders(1), 2)]
        self.assertEqual((first["actor"], first["reason"], first["request_id"]),
                         ("alice", "refund", "r-1"))
        self.assertEqual(second["actor"], "bob")
        self.assertNotIn("reason", second)

    def test_autocommit_single_statements(self) -> None:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            with timetrail.context(actor="carol", reason="import"):
                conn.execute(text("INSERT INTO sa_orders (id, status) VALUES (:id, 'new')"),
                             {"id": 2})
                conn.exec_driver_sql("UPDATE sa_orders SET status = 'checked' WHERE id = 2")
            with timetrail.context(actor="carl"):
                conn.exec_driver_sql("DELETE FROM sa_orders WHERE id = %(id)s", {"id": 2})
        events = capture.events(orders(2), 3)
        self.assertEqual([e["type"] for e in events], ["$put", "$patch", "$delete"])
        self.assertEqual([e["metadata"]["actor"] for e in events], ["carol", "carol", "carl"])
        self.assertEqual(events[1]["metadata"]["reason"], "import")

    def test_bulk_update_and_executemany(self) -> None:
        with engine.begin() as conn:  # 50 rows without a context, in one executemany
            conn.execute(Item.__table__.insert(),
                         [{"id": i, "status": "new"} for i in range(1, 51)])
        with timetrail.context(actor="dave", reason="reprice"), Session(engine) as session:
            session.query(Item).filter(Item.id <= 50).update({Item.status: "repriced"},
                                                             synchronize_session=False)
            session.commit()
        for i in range(1, 51):
            first, second = capture.events(items(i), 2)
            self.assertNotIn("actor", first["metadata"])
            self.assertEqual((second["metadata"]["actor"], second["metadata"]["reason"]),
                             ("dave", "reprice"), i)
            self.assertEqual(second["data"], {"status": "repriced"})

        # ORM flushes of many objects: an INSERT executemany, then an UPDATE executemany.
        with timetrail.context(actor="erin"), Session(engine) as session, session.begin():
            session.add_all([Item(id=i, status="new") for i in range(101, 121)])
        with timetrail.context(actor="frank"), Session(engine) as session, session.begin():
            for item in session.query(Item).filter(Item.id > 100):
                item.note = f"note {item.id}"
        for i in range(101, 121):
            first, second = capture.events(items(i), 2)
            self.assertEqual(first["metadata"]["actor"], "erin", i)
            self.assertEqual(second["metadata"]["actor"], "frank", i)
            self.assertEqual(second["data"], {"note": f"note {i}"})

    def test_raw_sql_with_percent(self) -> None:
        with Session(engine) as session, session.begin():
            session.add(Order(id=3, status="new"))
        with timetrail.context(actor="gina"), Session(engine) as session, session.begin():
            session.execute(text("UPDATE sa_orders SET note = '50% off' WHERE id = :id"),
                            {"id": 3})
        with timetrail.context(actor="gus"), engine.begin() as conn:
            conn.exec_driver_sql("UPDATE sa_orders SET note = note || ', 100%%' WHERE id = %s",
                                 (3,))
        # SQL sent past SQLAlchemy, on its DBAPI connection: annotate() by hand.
        with timetrail.context(actor="gloria"), engine.connect() as conn:
            with conn.connection.cursor() as cur:
                cur.copy_expert(timetrail.annotate("COPY sa_orders (id, note) FROM STDIN"),
                                io.StringIO("8\t100% copied\n"))
            conn.connection.commit()
        events = capture.events(orders(3), 3)
        self.assertEqual(events[1]["data"], {"note": "50% off"})
        self.assertEqual(events[1]["metadata"]["actor"], "gina")
        self.assertEqual(events[2]["data"], {"note": "50% off, 100%"})
        self.assertEqual(events[2]["metadata"]["actor"], "gus")
        copied = capture.events(orders(8), 1)[0]
        self.assertEqual((copied["data"]["note"], copied["metadata"]["actor"]),
                         ("100% copied", "gloria"))

    def test_context_values_round_trip(self) -> None:
        reason = 'a/b 50% off? $1 $$ */ /* "double" \'single\' \\ é 日本 €'
        with timetrail.context(actor="ålice/ü", reason=reason, request_id="x%(y)s?"):
            with Session(engine) as session, session.begin():
                session.add(Order(id=4, status="new"))
        metadata = capture.last(orders(4), 1)
        self.assertEqual(metadata["actor"], "ålice/ü")
        self.assertEqual(metadata["reason"], reason)
        self.assertEqual(metadata["request_id"], "x%(y)s?")

    def test_no_context_no_actor(self) -> None:
        with Session(engine) as session, session.begin():
            session.add(Order(id=5, status="new"))
        metadata = capture.last(orders(5), 1)
        for member in ("actor", "reason", "request_id"):
            self.assertNotIn(member, metadata)
        self.assertEqual(metadata["source"]["operation"], "insert")

    def test_threads_at_the_same_time(self) -> None:
        with engine.begin() as conn:
            conn.execute(Order.__table__.insert(),
                         [{"id": i, "status": "new"} for i in range(10, 30)])
        barrier = threading.Barrier(2, timeout=30)
        errors: List[BaseException] = []

        def work(actor: str, ids: range) -> None:
            try:
                with timetrail.context(actor=actor):
                    for i in ids:
                        with Session(engine) as session, session.begin():
                            session.get(Order, i).status = f"by {actor}"
                            barrier.wait()  # both transactions are open now
            except BaseException as e:  # noqa: BLE001 - reported by the test
                errors.append(e)
                barrier.abort()

        threads = [threading.Thread(target=work, args=("thread-one", range(10, 20))),
                   threading.Thread(target=work, args=("thread-two", range(20, 30)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for i in range(10, 30):
            event = capture.events(orders(i), 2)[1]
            actor = "thread-one" if i < 20 else "thread-two"
            self.assertEqual(event["metadata"]["actor"], actor, i)
            self.assertEqual(event["data"], {"status": f"by {actor}"})

    def test_explicit_set_context_wins_in_its_transaction(self) -> None:
        explicit = {"actor": "explicit", "reason": "by hand"}
        with timetrail.context(actor="from-comment"), Session(engine) as session:
            with session.begin():
                session.execute(text("SELECT timetrail.set_context(CAST(:c AS jsonb))"),
                                {"c": json.dumps(explicit)})
                session.add(Order(id=6, status="new"))
                session.flush()
                session.get(Order, 6).status = "paid"
            with session.begin():  # the next transaction: the comment again
                session.get(Order, 6).status = "shipped"
        events = capture.events(orders(6), 3)
        for event in events[:2]:
            self.assertEqual({k: event["metadata"].get(k) for k in explicit}, explicit)
        self.assertEqual(events[2]["metadata"]["actor"], "from-comment")
        self.assertNotIn("reason", events[2]["metadata"])


def writing_app(environ: Dict[str, Any], start_response: Any) -> Any:
    """A WSGI application that writes while it runs and again while its body is streamed."""
    key = int(environ["PATH_INFO"].strip("/"))
    with Session(engine) as session, session.begin():
        session.add(Order(id=key, status="new"))
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body() -> Any:
        yield b"created\n"
        with Session(engine) as session, session.begin():
            session.get(Order, key).status = "streamed"
        yield json.dumps(timetrail.current_context()).encode()

    return body()


def context_from_environ(environ: Dict[str, Any]) -> Dict[str, Any]:
    return {"actor": environ.get("HTTP_X_USER"), "reason": "wsgi"}


class WsgiMiddlewareTest(unittest.TestCase):
    def test_requests_over_http(self) -> None:
        app = ContextMiddleware(writing_app, context_from_environ)
        server = wsgiref.simple_server.make_server(
            "127.0.0.1", 0, app, handler_class=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            base = f"http://127.0.0.1:{server.server_port}"
            with urllib.request.urlopen(urllib.request.Request(
                    f"{base}/40", headers={"X-User": "henry", "X-Request-Id": "req-42"})) as r:
                streamed = json.loads(r.read().decode().split("\n", 1)[1])
            self.assertEqual(streamed, {"actor": "henry", "reason": "wsgi",
                                        "request_id": "req-42"})
            with urllib.request.urlopen(urllib.request.Request(
                    f"{base}/41", headers={"X-User": "ida"})) as r:
                r.read()
        finally:
            server.shutdown()
            server.server_close()
        for event in capture.events(orders(40), 2):
            self.assertEqual({k: event["metadata"][k] for k in ("actor", "reason", "request_id")},
                             {"actor": "henry", "reason": "wsgi", "request_id": "req-42"})
        generated = set()
        for event in capture.events(orders(41), 2):
            self.assertEqual(event["metadata"]["actor"], "ida")
            generated.add(str(uuid.UUID(event["metadata"]["request_id"])))
        self.assertEqual(len(generated), 1)  # one request, one generated id

    def test_context_is_cleared_after_a_streamed_response(self) -> None:
        environ: Dict[str, Any] = {"PATH_INFO": "/42", "HTTP_X_USER": "jack"}
        wsgiref.util.setup_testing_defaults(environ)
        body = ContextMiddleware(writing_app, context_from_environ)(environ, lambda *a: None)
        self.assertEqual(timetrail.current_context(), {})  # not between the body's parts
        chunks = list(body)
        body.close()
        self.assertEqual(timetrail.current_context(), {})
        self.assertEqual(json.loads(chunks[1])["actor"], "jack")
        self.assertEqual([e["metadata"]["actor"] for e in capture.events(orders(42), 2)],
                         ["jack", "jack"])

    def test_bad_arguments(self) -> None:
        with self.assertRaisesRegex(TypeError, "WSGI application"):
            ContextMiddleware(None)  # type: ignore[arg-type]
        with self.assertRaisesRegex(TypeError, "context_from_environ"):
            ContextMiddleware(writing_app, {"actor": "x"})  # type: ignore[arg-type]
        with self.assertRaisesRegex(TypeError, "takes an Engine"):
            timetrail.sqlalchemy.instrument("postgresql://")


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


if __name__ == "__main__":
    unittest.main()
