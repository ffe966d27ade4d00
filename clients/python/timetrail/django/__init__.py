"""Django: every write statement carries the active :func:`timetrail.context` as a trailing
``/*timetrail {...}*/`` comment, and a middleware sets the context per request.

settings.py::

    DATABASES = {"default": {"ENGINE": "timetrail.django.db", ...}}   # postgresql + comments
    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",
                  "timetrail.django.middleware.ContextMiddleware", ...]

A project that keeps its own ENGINE calls :func:`install` once instead (e.g. in an
``AppConfig.ready``).
"""

from __future__ import annotations

from typing import Any, Callable

from ..context import annotate


def execute_wrapper(execute: Callable[..., Any], sql: Any, params: Any, many: bool,
                    context: Any) -> Any:
    """A Django execute wrapper (``connection.execute_wrappers``) that annotates the statement.
    ``psycopg2.sql.Composed`` statements pass unchanged."""
    if isinstance(sql, str):
        sql = annotate(sql)
    return execute(sql, params, many, context)


def wrap(connection: Any) -> None:
    """Installs :func:`execute_wrapper` on one Django connection (once)."""
    if connection.vendor == "postgresql" and execute_wrapper not in connection.execute_wrappers:
        # First: the wrappers after it (and the database) see the annotated statement.
        connection.execute_wrappers.insert(0, execute_wrapper)


def _on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    wrap(connection)


def install() -> None:
    """Annotates the statements of every PostgreSQL connection, for projects whose ENGINE is
    not ``timetrail.django.db``: the connections open now and each one opened later."""
    from django.db import connections
    from django.db.backends.signals import connection_created

    connection_created.connect(_on_connection_created, dispatch_uid="timetrail.django.install")
    for connection in connections.all():
        wrap(connection)
