"""Django's PostgreSQL backend, with :func:`timetrail.django.execute_wrapper` on every
connection: ``model.save()`` in autocommit, ``QuerySet.update()`` / ``delete()`` /
``bulk_create()`` and ``connection.cursor().execute(raw SQL)`` all carry the active context."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base

from .. import wrap


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # execute_wrappers belongs to this object, which outlives reconnects.
        wrap(self)
