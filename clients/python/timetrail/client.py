"""A client for the timetrail HTTP API v1 (docs/http-api.md), standard library only."""

from __future__ import annotations

import datetime as _dt
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from .errors import ConnectionFailed, TimetrailError, error_from_response
from .subscription import Subscription

#: A time: an RFC 3339 string, a plain date string, a ``datetime`` (naive means UTC) or
#: microseconds since the epoch.
Time = Union[str, int, _dt.datetime, _dt.date]
#: An expected revision: ``"any"``, ``"no_stream"``, ``"exists"`` or a revision number.
ExpectedRevision = Union[str, int]
Json = Dict[str, Any]


def format_time(value: Time) -> str:
    """Formats a time as the API takes it (RFC 3339 UTC with microseconds for datetimes)."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, _dt.date):
        return value.isoformat()
    return str(value)


def parse_time(value: str) -> _dt.datetime:
    """Parses a time the API returns (``2026-11-22T13:40:00.000000Z``) into an aware datetime."""
    return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def new_event(type: str, data: Any = None, *, metadata: Any = None, id: Optional[str] = None,
              valid_from: Optional[Time] = None) -> Json:
    """An event to append. It gets a fresh UUID unless ``id`` is given, so that re-sending the
    same event list after a failure is answered as an idempotent replay, not stored twice."""
    event: Json = {"id": id or str(uuid.uuid4()), "type": type}
    if data is not None:
        event["data"] = data
    if metadata is not None:
        event["metadata"] = metadata
    if valid_from is not None:
        event["valid_from"] = format_time(valid_from)
    return event


def stream_append(stream: str, events: Sequence[Json],
                  expected_revision: ExpectedRevision = "any") -> Json:
    """One stream's part of a transaction (see :meth:`Client.transaction`)."""
    return {"stream": stream, "expected_revision": expected_revision, "events": list(events)}


class Client:
    """A timetrail server at ``base_url`` (``http://127.0.0.1:7070``).

    ``token`` is an API token sent as ``Authorization: Bearer``; ``timeout`` the socket timeout
    in seconds of each request. Every read takes ``min_position`` (a ``position`` a write
    answered) and ``timeout_ms``: the server then waits until that position is readable.
    Failures raise :class:`~timetrail.TimetrailError`.
    """

    def __init__(self, base_url: str, token: Optional[str] = None, timeout: float = 30.0,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.ssl_context = ssl_context

    # -- plumbing ---------------------------------------------------------------------------

    def _headers(self) -> Dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def request(self, method: str, path: str, query: Optional[Mapping[str, Any]] = None,
                body: Any = None, timeout: Optional[float] = None) -> Any:
        """Sends one request to ``path`` (``/v1/...``) and returns the parsed JSON answer.

        ``None`` query values are left out, booleans become ``true``/``false`` and lists are
        joined with commas. ``timeout`` overrides the client's socket timeout. Use it for
        endpoints this class does not wrap (``/v1/tokens``, ``/v1/backup``...)."""
        url = self.base_url + path
        params = _query(query or {})
        if params:
            url += "?" + params
        headers = self._headers()
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout,
                                        context=self.ssl_context) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            raise error_from_response(e.code, parsed) from None
        except (urllib.error.URLError, OSError) as e:
            raise ConnectionFailed(f"{method} {url}: {getattr(e, 'reason', e)}") from None
        return json.loads(raw) if raw else None

    def _get(self, path: str, query: Mapping[str, Any], min_position: Optional[int],
             timeout_ms: Optional[int]) -> Any:
        q = dict(query)
        q["min_position"] = min_position
        q["timeout_ms"] = timeout_ms
        # the server may wait up to timeout_ms (default 5 s) for min_position: wait longer
        wait = (timeout_ms if timeout_ms is not None else 5000) / 1000.0 if min_position else 0
        return self.request("GET", path, q, timeout=max(self.timeout, wait + 5.0))

    # -- writing ----------------------------------------------------------------------------

    def append(self, stream: str, events: Sequence[Json],
               expected_revision: Optional[ExpectedRevision] = None) -> Json:
        """Appends ``events`` (see :func:`new_event`) to ``stream``.

        ``expected_revision`` is ``"any"`` (the server's default), ``"no_stream"``, ``"exists"``
        or the revision the stream must be at; otherwise :class:`WrongExpectedRevision` is
        raised. Returns ``{"stream", "first_revision", "revision", "first_position",
        "position", "tx", "recorded_at", "idempotent_replay"}``."""
        body: Json = {"events": list(events)}
        if expected_revision is not None:
            body["expected_revision"] = expected_revision
        return self.request("POST", f"/v1/streams/{_seg(stream)}", body=body)

    def transaction(self, appends: Sequence[Json]) -> Json:
        """Appends to several streams atomically. ``appends`` are :func:`stream_append` dicts.
        Returns ``{"tx", "first_position", "position", "recorded_at", "idempotent_replay",
        "streams": [{"stream", "first_revision", "revision", "first_position", "position"}]}``."""
        return self.request("POST", "/v1/transactions", body={"appends": list(appends)})

    def transaction_batch(self, transactions: Sequence[Sequence[Json]]) -> Json:
        """Commits many transactions in order (a bulk load); each item is a list of
        :func:`stream_append` dicts. It stops at the first that fails, and does not raise for
        that one: the answer is ``{"results": [{"status", "committed" or "error"}], "failed":
        index or None}``, where everything before ``failed`` is stored and nothing after it.
        A batch refused as a whole (a malformed transaction, a forbidden stream, 401, 413...)
        stores nothing and raises :class:`TimetrailError`."""
        body = {"transactions": [{"appends": list(t)} for t in transactions]}
        try:
            return self.request("POST", "/v1/transactions/batch", body=body)
        except TimetrailError as e:
            if "results" in e.body:
                return e.body
            raise

    def revert(self, stream: str, *, to_revision: Optional[int] = None,
               to_time: Optional[Time] = None,
               expected_revision: Optional[ExpectedRevision] = None,
               actor: Optional[str] = None, reason: Optional[str] = None) -> Json:
        """Restores the state at ``to_revision`` or ``to_time`` by appending a new ``$put`` (or
        ``$delete``). Answers like :meth:`append`."""
        body: Json = {}
        if to_revision is not None:
            body["to_revision"] = to_revision
        if to_time is not None:
            body["to_time"] = format_time(to_time)
        if expected_revision is not None:
            body["expected_revision"] = expected_revision
        if actor is not None:
            body["actor"] = actor
        if reason is not None:
            body["reason"] = reason
        return self.request("POST", f"/v1/entities/{_seg(stream)}/revert", body=body)

    # -- reading ----------------------------------------------------------------------------

    def read_stream(self, stream: str, *, from_revision: Optional[int] = None,
                    backward: bool = False, limit: Optional[int] = None,
                    min_position: Optional[int] = None,
                    timeout_ms: Optional[int] = None) -> Json:
        """One page of a stream: ``{"events": [...], "next": REV or None}``. Pass ``next`` as
        ``from_revision`` for the following page. Raises :class:`NotFound` for a stream
        without events."""
        return self._get(f"/v1/streams/{_seg(stream)}",
                         {"from": from_revision,
                          "direction": "backward" if backward else None, "limit": limit},
                         min_position, timeout_ms)

    def iter_stream(self, stream: str, *, from_revision: Optional[int] = None,
                    backward: bool = False, page_size: int = 100,
                    min_position: Optional[int] = None) -> Iterator[Json]:
        """Every event of a stream from ``from_revision`` on, reading page after page."""
        cursor = from_revision
        while True:
            page = self.read_stream(stream, from_revision=cursor, backward=backward,
                                    limit=page_size, min_position=min_position)
            yield from page["events"]
            cursor = page.get("next")
            if cursor is None:
                return

    def stream_info(self, stream: str, *, min_position: Optional[int] = None,
                    timeout_ms: Optional[int] = None) -> Json:
        """``{"stream", "exists", "revision", "position", "deleted"}`` (also for a stream
        without events, where ``exists`` is false)."""
        return self._get(f"/v1/streams/{_seg(stream)}/info", {}, min_position, timeout_ms)

    def read_log(self, *, from_position: Optional[int] = None, limit: Optional[int] = None,
                 stream_prefix: Optional[str] = None, types: Optional[Sequence[str]] = None,
                 min_position: Optional[int] = None, timeout_ms: Optional[int] = None) -> Json:
        """One page of the global log: ``{"events", "next", "head"}``. With filters a page may
        hold fewer than ``limit`` events while ``next`` <= ``head``: keep reading."""
        return self._get("/v1/log", {"from": from_position, "limit": limit,
                                     "stream_prefix": stream_prefix, "types": types},
                         min_position, timeout_ms)

    def iter_log(self, *, from_position: int = 1, stream_prefix: Optional[str] = None,
                 types: Optional[Sequence[str]] = None, page_size: int = 1000,
                 min_position: Optional[int] = None) -> Iterator[Json]:
        """The global log from ``from_position`` up to the head as it was when each page was
        read."""
        pos = from_position
        while True:
            page = self.read_log(from_position=pos, limit=page_size, stream_prefix=stream_prefix,
                                 types=types, min_position=min_position)
            yield from page["events"]
            pos = page["next"]
            if pos > page["head"]:
                return

    def get_event(self, event_id: str, *, min_position: Optional[int] = None,
                  timeout_ms: Optional[int] = None) -> Json:
        """The event with this id (:class:`NotFound` if none)."""
        return self._get(f"/v1/events/{_seg(event_id)}", {}, min_position, timeout_ms)

    # -- temporal queries -------------------------------------------------------------------

    def entity(self, stream: str, *, at_revision: Optional[int] = None,
               at_position: Optional[int] = None, as_of: Optional[Time] = None,
               valid_at: Optional[Time] = None, known_at: Optional[Time] = None,
               min_position: Optional[int] = None, timeout_ms: Optional[int] = None) -> Json:
        """The entity's state: the latest, or at one of ``at_revision``, ``at_position``,
        ``as_of`` (system time) or ``valid_at`` (valid time, as known at ``known_at``).
        Returns ``{"stream", "exists", "state", "revision", "position", "recorded_at",
        "valid_from", "metadata"}``."""
        return self._get(f"/v1/entities/{_seg(stream)}",
                         {"at_revision": at_revision, "at_position": at_position,
                          "as_of": _opt_time(as_of), "valid_at": _opt_time(valid_at),
                          "known_at": _opt_time(known_at)},
                         min_position, timeout_ms)

    def history(self, stream: str, path: str, *, valid_time: bool = False,
                known_at: Optional[Time] = None, limit: Optional[int] = None,
                cursor: Optional[str] = None, min_position: Optional[int] = None,
                timeout_ms: Optional[int] = None) -> Json:
        """One page of the intervals during which the value at JSON pointer ``path`` stayed the
        same: ``{"stream", "path", "intervals": [{"value", "exists", "from", "to",
        "metadata"}], "cursor"}``. Pass ``cursor`` back for the next page (``None`` at the
        end)."""
        return self._get(f"/v1/entities/{_seg(stream)}/history",
                         {"path": path, "valid_time": True if valid_time else None,
                          "known_at": _opt_time(known_at), "limit": limit, "cursor": cursor},
                         min_position, timeout_ms)

    def iter_history(self, stream: str, path: str, *, valid_time: bool = False,
                     known_at: Optional[Time] = None, page_size: int = 1000,
                     min_position: Optional[int] = None) -> Iterator[Json]:
        """Every interval of :meth:`history`, following the cursor."""
        cursor: Optional[str] = None
        while True:
            page = self.history(stream, path, valid_time=valid_time, known_at=known_at,
                                limit=page_size, cursor=cursor, min_position=min_position)
            yield from page["intervals"]
            cursor = page.get("cursor")
            if cursor is None:
                return

    def diff(self, stream: str, *, from_revision: Optional[int] = None,
             from_time: Optional[Time] = None, to_revision: Optional[int] = None,
             to_time: Optional[Time] = None, events: bool = False,
             limit: Optional[int] = None, cursor: Optional[str] = None,
             min_position: Optional[int] = None, timeout_ms: Optional[int] = None) -> Json:
        """The states at two points (``from_revision``/``from_time``, required; ``to_revision``/
        ``to_time``, default now) and the JSON Patch between them: ``{"stream", "from", "to",
        "patch"}``. With ``events=True`` also a page of the events in between and a
        ``cursor`` for the next page."""
        return self._get(f"/v1/entities/{_seg(stream)}/diff",
                         {"from": from_revision, "from_time": _opt_time(from_time),
                          "to": to_revision, "to_time": _opt_time(to_time),
                          "events": True if events else None, "limit": limit,
                          "cursor": cursor},
                         min_position, timeout_ms)

    def activity(self, *, actor: Optional[str] = None, stream_prefix: Optional[str] = None,
                 types: Optional[Sequence[str]] = None, since: Optional[Time] = None,
                 until: Optional[Time] = None, limit: Optional[int] = None,
                 cursor: Optional[str] = None, min_position: Optional[int] = None,
                 timeout_ms: Optional[int] = None) -> Json:
        """One page of events across streams, newest first: ``{"events", "cursor"}``; pass
        ``cursor`` back for the next page (``None`` at the end)."""
        return self._get("/v1/activity",
                         {"actor": actor, "stream_prefix": stream_prefix, "type": types,
                          "since": _opt_time(since), "until": _opt_time(until),
                          "limit": limit, "cursor": cursor},
                         min_position, timeout_ms)

    def iter_activity(self, *, page_size: int = 100, **filters: Any) -> Iterator[Json]:
        """Every event of :meth:`activity` with these filters, following the cursor."""
        cursor: Optional[str] = None
        while True:
            page = self.activity(limit=page_size, cursor=cursor, **filters)
            yield from page["events"]
            cursor = page.get("cursor")
            if cursor is None:
                return

    # -- integrity, consumers, health -------------------------------------------------------

    def integrity_head(self) -> Json:
        """The head of the integrity chain: ``{"position", "hash"}``; keep it elsewhere."""
        return self.request("GET", "/v1/integrity")

    def verify(self) -> Json:
        """Recomputes the whole chain: ``{"ok", "events_checked", "first_bad_position",
        "message", "head"}`` (admin scope when authentication is on)."""
        return self.request("POST", "/v1/integrity/verify")

    def ack(self, consumer: str, position: int) -> Json:
        """Stores ``position`` as the last one the named consumer has processed."""
        return self.request("POST", f"/v1/consumers/{_seg(consumer)}/ack",
                            body={"position": position})

    def consumer(self, consumer: str) -> Json:
        """``{"name", "position"}`` of a named consumer (:class:`NotFound` if it never acked)."""
        return self.request("GET", f"/v1/consumers/{_seg(consumer)}")

    def health(self) -> Json:
        """``{"status": "ok", "position"}``."""
        return self.request("GET", "/healthz")

    # -- subscriptions ----------------------------------------------------------------------

    def subscribe(self, *, from_position: Optional[int] = None,
                  stream_prefix: Optional[str] = None, types: Optional[Sequence[str]] = None,
                  consumer: Optional[str] = None, reconnect: bool = True,
                  retry_delay: float = 0.2, max_retry_delay: float = 5.0,
                  give_up_after: Optional[float] = 60.0,
                  read_timeout: float = 60.0) -> Subscription:
        """Follows the global log over server-sent events (``GET /v1/subscribe``).

        Iterating the returned :class:`Subscription` yields events in position order: the
        stored ones from ``from_position`` (default 1, or after ``consumer``'s acknowledged
        position), then live ones as they commit. When the connection drops it reconnects with
        ``Last-Event-ID`` set to the last position delivered, so no event is skipped or
        repeated; it gives up (raising :class:`ConnectionFailed`) after ``give_up_after``
        seconds without a connection (``None``: never). ``read_timeout`` should exceed the
        server's keepalive interval (15 s by default)."""
        query = _query({"from": from_position, "stream_prefix": stream_prefix, "types": types,
                        "consumer": consumer})
        return Subscription(self.base_url, "/v1/subscribe" + ("?" + query if query else ""),
                            headers=self._headers(), ssl_context=self.ssl_context,
                            reconnect=reconnect, retry_delay=retry_delay,
                            max_retry_delay=max_retry_delay, give_up_after=give_up_after,
                            read_timeout=read_timeout)


def _seg(value: str) -> str:
    """One percent-encoded path segment (``/`` becomes ``%2F``)."""
    return urllib.parse.quote(value, safe="")


def _opt_time(value: Optional[Time]) -> Optional[str]:
    return None if value is None else format_time(value)


def _query(params: Mapping[str, Any]) -> str:
    items: List[tuple] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = ",".join(value)
        items.append((key, str(value)))
    return urllib.parse.urlencode(items, quote_via=urllib.parse.quote)


__all__ = ["Client", "new_event", "stream_append", "format_time", "parse_time",
           "TimetrailError"]
