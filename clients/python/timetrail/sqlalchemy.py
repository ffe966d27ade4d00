"""SQLAlchemy (1.4 and 2.x): every write statement an engine runs carries the active
:func:`timetrail.context` as a trailing ``/*timetrail {...}*/`` comment.

    from sqlalchemy import create_engine
    import timetrail, timetrail.sqlalchemy

    engine = timetrail.sqlalchemy.instrument(create_engine("postgresql+psycopg2://..."))
    with timetrail.context(actor="alice", reason="refund"):
        with Session(engine) as session, session.begin():
            session.get(Order, 42).status = "refunded"

The comment is added at the cursor, after SQLAlchemy compiled the statement, so ORM flushes,
``Query.update()`` / bulk updates, ``text()``, ``exec_driver_sql``, ``executemany`` and AUTOCOMMIT
connections are all covered.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from .context import annotate

_INSTRUMENTED = "_timetrail_instrumented"


def _before_cursor_execute(conn: Any, cursor: Any, statement: Any, parameters: Any,
                           context: Any, executemany: bool) -> Any:
    if isinstance(statement, str):
        statement = annotate(statement)
    return statement, parameters


def _annotated(statement: Any) -> bool:
    return isinstance(statement, str) and "/*timetrail " in statement \
        and statement.rstrip(" \t\r\n;").endswith("*/")


# psycopg 3 turns a statement run often into a named prepared statement; one with a context
# comment would give one prepared statement per distinct context, so those are run unprepared.
# (Its executemany prepares regardless; its cache of prepared statements is bounded.)
def _do_execute_unprepared(cursor: Any, statement: Any, parameters: Any, context: Any) -> Any:
    if _annotated(statement):
        cursor.execute(statement, parameters, prepare=False)
        return True
    return None


def instrument(engine: Any) -> Any:
    """Annotates every write statement ``engine`` runs while a context is active; returns the
    engine. Takes an ``Engine`` or an ``AsyncEngine`` (its sync engine is instrumented; not
    asyncpg, which prepares every statement). Safe to call twice."""
    target = getattr(engine, "sync_engine", engine)
    if not isinstance(target, Engine):
        raise TypeError(f"timetrail.sqlalchemy.instrument takes an Engine, "
                        f"not {type(engine).__name__}")
    if target.dialect.driver == "asyncpg":
        raise ValueError("timetrail.sqlalchemy.instrument: asyncpg prepares every statement, so "
                         "each distinct context would become a prepared statement of its own; "
                         "use the psycopg driver (postgresql+psycopg://) or psycopg2")
    if not getattr(target, _INSTRUMENTED, False):
        event.listen(target, "before_cursor_execute", _before_cursor_execute, retval=True)
        if target.dialect.driver == "psycopg":
            event.listen(target, "do_execute", _do_execute_unprepared)
        setattr(target, _INSTRUMENTED, True)
    return engine
