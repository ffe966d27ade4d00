"""Who and why for the changes `timetrail capture` records: a request context that database
integrations append to each write statement as a trailing ``/*timetrail {...}*/`` comment.

The source database turns that comment into the transaction's context once the table has the
statement trigger of ``sql/timetrail_context.sql`` (``timetrail.track_context``), so implicit
(autocommit) transactions, bulk updates and raw SQL all carry it. Standard library only.

>>> import timetrail
>>> with timetrail.context(actor="alice", reason="refund"):
...     timetrail.annotate("DELETE FROM orders WHERE id = 42")
'DELETE FROM orders WHERE id = 42 /*timetrail {"actor":"alice","reason":"refund"}*/'
"""

from __future__ import annotations

import contextvars
import json
import re
from typing import Any, Dict, Mapping, Optional

# A ContextVar, not a thread-local: each thread and each asyncio task sees its own context.
_current: "contextvars.ContextVar[Optional[Dict[str, Any]]]" = contextvars.ContextVar(
    "timetrail_context", default=None)

# Statements that never write a row; every other statement gets the comment (rules in
# sql/timetrail_context.sql). A write hidden in a SELECT (a function call) is not annotated.
_READ_ONLY = frozenset({"SELECT", "SHOW", "SET", "RESET", "BEGIN", "START", "COMMIT",
                        "ROLLBACK", "SAVEPOINT", "RELEASE"})
_MARKER = "/*timetrail "
# The trigger reads the comment only at the very end of the text, blanks and ';' aside.
_TRAILING = " \t\r\n;"
_WORD = re.compile(r"[A-Za-z_]+")
# Characters a driver may take for a parameter placeholder ('%', '?', '$') or that could end the
# comment ('/'): JSON allows them only inside strings, where \\uXXXX means the same character.
_ESCAPES = str.maketrans({"/": "\\u002f", "%": "\\u0025", "?": "\\u003f", "$": "\\u0024"})


def _members(mapping: Optional[Mapping[str, Any]], members: Mapping[str, Any]) -> Dict[str, Any]:
    merged: Dict[str, Any] = {}
    if mapping is not None:
        if not isinstance(mapping, Mapping):
            raise TypeError(f"a timetrail context is a mapping of names to values, "
                            f"not {type(mapping).__name__}")
        merged.update(mapping)
    merged.update(members)
    for key, value in merged.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"timetrail context names must be non-empty strings, not {key!r}")
        try:
            json.dumps(value)
        except (TypeError, ValueError) as e:
            raise TypeError(f"timetrail context member {key!r} cannot be written as JSON: "
                            f"{e}") from None
    return merged


class context:
    """``with timetrail.context(actor="alice", reason="refund"):`` sets who and why for the
    statements run inside the block. Blocks nest: inner members override outer ones, and the
    outer context is back on exit. A member given as ``None`` is removed. Also takes a mapping:
    ``timetrail.context({"actor": "alice"}, reason="refund")``."""

    def __init__(self, mapping: Optional[Mapping[str, Any]] = None, **members: Any) -> None:
        self._members = _members(mapping, members)
        self._tokens: list = []

    def __enter__(self) -> Dict[str, Any]:
        merged = {**(_current.get() or {}), **self._members}
        merged = {k: v for k, v in merged.items() if v is not None}
        self._tokens.append(_current.set(merged or None))
        return dict(merged)

    def __exit__(self, *exc: Any) -> None:
        _current.reset(self._tokens.pop())


def set_context(mapping: Optional[Mapping[str, Any]] = None, **members: Any) -> contextvars.Token:
    """Replaces the current context (for middleware: a request starts afresh). Returns a token
    for :func:`clear_context`. ``None`` members are left out."""
    merged = {k: v for k, v in _members(mapping, members).items() if v is not None}
    return _current.set(merged or None)


def clear_context(token: Optional[contextvars.Token] = None) -> None:
    """Ends a context: with the token :func:`set_context` returned, the context before it is
    back; without, there is no context."""
    if token is None:
        _current.set(None)
    else:
        _current.reset(token)


def current_context() -> Dict[str, Any]:
    """A copy of the active context's members (empty when none is active)."""
    return dict(_current.get() or {})


def _skip_blanks_and_comments(sql: str) -> int:
    """The index of the first character after leading whitespace and comments (block comments
    nest in PostgreSQL)."""
    i, n = 0, len(sql)
    while i < n:
        if sql[i].isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        else:
            break
    return i


def is_write(sql: str) -> bool:
    """Whether the statement may write rows: anything but SELECT, SHOW, SET, RESET, BEGIN,
    START, COMMIT, ROLLBACK, SAVEPOINT, RELEASE and PREPARE TRANSACTION (after leading
    whitespace and comments). WITH counts as a write: a CTE may hold one."""
    start = _skip_blanks_and_comments(sql)
    word = _WORD.match(sql, start)
    if word is None:
        return start < len(sql)  # e.g. "(SELECT ...)": not known to be read-only
    keyword = word.group().upper()
    if keyword in _READ_ONLY:
        return False
    if keyword == "PREPARE":
        rest = _WORD.match(sql, _skip_blanks_and_comments(sql[word.end():]) + word.end())
        return not (rest and rest.group().upper() == "TRANSACTION")
    return True


def encode_context(members: Mapping[str, Any]) -> str:
    """The context as the comment carries it: compact JSON without '/', '%', '?' or '$'."""
    text = json.dumps(dict(members), ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only \\u escapes can say it
        text = json.dumps(dict(members), separators=(",", ":"))
    return text.translate(_ESCAPES)


def annotate(sql: str) -> str:
    """Appends `` /*timetrail {json}*/`` with the active context to a write statement.

    Unchanged: a statement that cannot write, any statement when no context is active, and one
    that already ends with a ``/*timetrail ...*/`` comment. A trailing ``;`` stays last.
    """
    if not isinstance(sql, str):
        raise TypeError(f"annotate takes the statement as str, not {type(sql).__name__}")
    members = _current.get()
    if not members or not is_write(sql):
        return sql
    body = sql.rstrip(_TRAILING)
    tail = sql[len(body):]
    if body.endswith("*/") and _MARKER in body:
        opened = body.rfind(_MARKER)
        if "/" not in body[opened + len(_MARKER):-2]:
            return sql  # already carries a context (e.g. set by hand): leave it
    # A '--' comment on the last line would swallow a comment appended on the same line.
    separator = "\n" if "--" in body[body.rfind("\n") + 1:] else " "
    return f"{body}{separator}{_MARKER}{encode_context(members)}*/{tail}"
