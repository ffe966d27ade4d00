"""Unit tests of timetrail.context: which statements get the /*timetrail {...}*/ comment, and
that the comment's JSON reads back as the context (standard library only, no server)."""

from __future__ import annotations

import asyncio
import doctest
import importlib
import json
import threading
import unittest

import timetrail
from timetrail import annotate, clear_context, current_context, is_write, set_context

MARKER = "/*timetrail "


def comment_of(sql: str) -> dict:
    """The context the database's trigger would read: the JSON after the last marker."""
    body = sql.rstrip(" \t\r\n;")
    assert body.endswith("*/"), sql
    text = body[body.rfind(MARKER) + len(MARKER):-2]
    assert "/" not in text, text
    return json.loads(text)


class AnnotateTest(unittest.TestCase):
    def tearDown(self) -> None:
        clear_context()

    def test_no_context_no_comment(self) -> None:
        self.assertEqual(annotate("UPDATE t SET a = 1"), "UPDATE t SET a = 1")
        with timetrail.context(actor=None):  # only None members: no context
            self.assertEqual(annotate("UPDATE t SET a = 1"), "UPDATE t SET a = 1")

    def test_writes_are_annotated_reads_are_not(self) -> None:
        writes = ["INSERT INTO t VALUES (1)", "update t set a = 1", "DELETE FROM t",
                  "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
                  "COPY t FROM STDIN", "TRUNCATE t", "WITH x AS (SELECT 1) UPDATE t SET a = 1",
                  "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "CALL p()",
                  "PREPARE p AS UPDATE t SET a = 1", "(SELECT 1)"]
        reads = ["SELECT 1", "select * from t", "SHOW search_path", "SET x = 1", "RESET x",
                 "BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK", "SAVEPOINT s",
                 "RELEASE SAVEPOINT s", "PREPARE TRANSACTION 'x'", "prepare  transaction 'x'",
                 "", "   ", "-- only a comment"]
        with timetrail.context(actor="alice"):
            for sql in writes:
                self.assertTrue(is_write(sql), sql)
                self.assertEqual(comment_of(annotate(sql)), {"actor": "alice"}, sql)
            for sql in reads:
                self.assertFalse(is_write(sql), sql)
                self.assertEqual(annotate(sql), sql)

    def test_leading_whitespace_and_comments_are_skipped(self) -> None:
        with timetrail.context(actor="alice"):
            self.assertEqual(annotate("\n\t -- UPDATE\n  /* DELETE /* nested */ */ SELECT 1"),
                             "\n\t -- UPDATE\n  /* DELETE /* nested */ */ SELECT 1")
            sql = "  /* SELECT */ -- SELECT\n UPDATE t SET a = 1"
            self.assertEqual(annotate(sql), sql + ' /*timetrail {"actor":"alice"}*/')

    def test_semicolon_stays_last_and_line_comment_is_closed(self) -> None:
        with timetrail.context(actor="alice"):
            self.assertEqual(annotate("DELETE FROM t;\n"),
                             'DELETE FROM t /*timetrail {"actor":"alice"}*/;\n')
            self.assertEqual(annotate("DELETE FROM t -- why"),
                             'DELETE FROM t -- why\n/*timetrail {"actor":"alice"}*/')

    def test_already_commented_is_left(self) -> None:
        sql = 'UPDATE t SET a = 1 /*timetrail {"actor":"bob"}*/ ;'
        with timetrail.context(actor="alice"):
            self.assertEqual(annotate(sql), sql)
            self.assertEqual(annotate(annotate("UPDATE t SET a = 1")),
                             annotate("UPDATE t SET a = 1"))
            # a marker followed by more than the comment is not a context: annotate
            forged = "UPDATE t SET a = '/*timetrail {}*/' /* note */"
            self.assertEqual(comment_of(annotate(forged)), {"actor": "alice"})

    def test_encodings_round_trip(self) -> None:
        reason = 'a/b %s %(x)s ? $1 $$ */ /* "quoted" \'single\' \\ é 日本 \u2028 \x01 end'
        with timetrail.context(actor="ålice", reason=reason, n=7, ok=True, tags=["a/b"]):
            sql = annotate("UPDATE t SET a = %s")
        text = sql[sql.rfind(MARKER) + len(MARKER):-2]
        for bad in "/%?$":
            self.assertNotIn(bad, text)
        self.assertIn("é", text)  # compact, not \\u-escaped
        self.assertEqual(comment_of(sql),
                         {"actor": "ålice", "reason": reason, "n": 7, "ok": True, "tags": ["a/b"]})
        self.assertEqual(sql.count("%"), 1)  # only the statement's own placeholder

    def test_nesting_overrides_and_restores(self) -> None:
        with timetrail.context(actor="alice", reason="outer"):
            with timetrail.context(reason="inner", request_id="r1"):
                self.assertEqual(current_context(),
                                 {"actor": "alice", "reason": "inner", "request_id": "r1"})
                with timetrail.context(actor=None):
                    self.assertEqual(current_context(), {"reason": "inner", "request_id": "r1"})
            self.assertEqual(current_context(), {"actor": "alice", "reason": "outer"})
        self.assertEqual(current_context(), {})

    def test_set_and_clear(self) -> None:
        token = set_context({"actor": "alice"}, reason="x")
        self.assertEqual(current_context(), {"actor": "alice", "reason": "x"})
        inner = set_context(actor="bob")  # replaces, does not merge
        self.assertEqual(current_context(), {"actor": "bob"})
        clear_context(inner)
        self.assertEqual(current_context(), {"actor": "alice", "reason": "x"})
        clear_context(token)
        self.assertEqual(current_context(), {})
        set_context(actor="carol")
        clear_context()
        self.assertEqual(annotate("DELETE FROM t"), "DELETE FROM t")

    def test_threads_and_tasks_are_isolated(self) -> None:
        seen = {}
        barrier = threading.Barrier(2)

        def run(name: str) -> None:
            with timetrail.context(actor=name):
                barrier.wait()
                seen[name] = comment_of(annotate("DELETE FROM t"))["actor"]

        threads = [threading.Thread(target=run, args=(n,)) for n in ("t1", "t2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(seen, {"t1": "t1", "t2": "t2"})

        async def task(name: str) -> str:
            with timetrail.context(actor=name):
                await asyncio.sleep(0)
                return comment_of(annotate("DELETE FROM t"))["actor"]

        async def both() -> list:
            return list(await asyncio.gather(task("a1"), task("a2")))

        self.assertEqual(asyncio.run(both()), ["a1", "a2"])

    def test_bad_input_is_refused(self) -> None:
        with self.assertRaisesRegex(TypeError, "annotate takes the statement as str"):
            annotate(b"UPDATE t SET a = 1")  # type: ignore[arg-type]
        with self.assertRaisesRegex(TypeError, "cannot be written as JSON"):
            timetrail.context(actor=object())
        with self.assertRaisesRegex(TypeError, "mapping"):
            set_context(["actor"])  # type: ignore[arg-type]
        with self.assertRaisesRegex(TypeError, "non-empty strings"):
            set_context({1: "x"})  # type: ignore[dict-item]


def load_tests(loader: unittest.TestLoader, tests: unittest.TestSuite,
               pattern: str) -> unittest.TestSuite:
    # The module's own example (timetrail.context, the attribute, is the class).
    tests.addTests(doctest.DocTestSuite(importlib.import_module("timetrail.context")))
    return tests


if __name__ == "__main__":
    unittest.main()
