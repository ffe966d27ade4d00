"""Server-sent events from ``GET /v1/subscribe``, resumed across dropped connections."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Any, Dict, Iterator, Optional

from .errors import ConnectionFailed, error_from_response


class Subscription:
    """An iterable over the events of a subscription (made by :meth:`Client.subscribe`).

    ``position`` is the position of the last event delivered (``None`` before the first).
    When the connection drops, the next connection sends ``Last-Event-ID: position`` so the
    server resumes right after it. :meth:`close` (from any thread) ends the iteration.
    """

    def __init__(self, base_url: str, path: str, *, headers: Dict[str, str],
                 ssl_context: Optional[ssl.SSLContext], reconnect: bool, retry_delay: float,
                 max_retry_delay: float, give_up_after: Optional[float],
                 read_timeout: float) -> None:
        url = urllib.parse.urlsplit(base_url)
        self._https = url.scheme == "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or (443 if self._https else 80)
        self._path = url.path.rstrip("/") + path
        self._headers = dict(headers, Accept="text/event-stream")
        self._ssl_context = ssl_context
        self.reconnect = reconnect
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.give_up_after = give_up_after
        self.read_timeout = read_timeout
        self.position: Optional[int] = None
        #: How many connections were opened (1 plus the reconnects).
        self.connections = 0
        #: Events the server sent again after a reconnect, which were not delivered twice.
        self.duplicates_skipped = 0
        self._closed = False
        self._lock = threading.Lock()
        self._sock: Optional[socket.socket] = None

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        delay = self.retry_delay
        down_since: Optional[float] = None
        while not self._closed:
            try:
                resp = self._connect()
            except (OSError, http.client.HTTPException, _Retry) as e:
                if self._closed:
                    return
                now = time.monotonic()
                down_since = down_since if down_since is not None else now
                if not self.reconnect or (self.give_up_after is not None
                                          and now - down_since > self.give_up_after):
                    raise ConnectionFailed(f"subscribe {self._path}: {e}") from None
                time.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)
                continue
            delay, down_since = self.retry_delay, None
            try:
                for event in self._events(resp):
                    position = int(event["position"])
                    if self.position is not None and position <= self.position:
                        self.duplicates_skipped += 1  # never deliver an event twice
                        continue
                    self.position = position
                    yield event
            except (OSError, http.client.HTTPException, ValueError):
                pass  # the connection dropped: reconnect below
            finally:
                self._drop()
            if not self.reconnect:
                return

    def close(self) -> None:
        """Ends the subscription; an iteration blocked waiting for events returns."""
        self._closed = True
        self._drop()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _connect(self) -> http.client.HTTPResponse:
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.read_timeout,
                                               context=self._ssl_context)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.read_timeout)
        headers = dict(self._headers)
        if self.position is not None:
            headers["Last-Event-ID"] = str(self.position)
        conn.connect()
        with self._lock:
            if self._closed:
                conn.close()
                raise OSError("subscription closed")
            self._sock = conn.sock
        self.connections += 1
        conn.request("GET", self._path, headers=headers)
        resp = conn.getresponse()
        if resp.status != 200:
            raw = resp.read()
            self._drop()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            if resp.status == 503 and self.reconnect:
                raise _Retry(f"503 {body}")  # shutting down or full: try again later
            raise error_from_response(resp.status, body)
        return resp

    def _drop(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked reading it
            except OSError:
                pass
            sock.close()

    @staticmethod
    def _events(resp: http.client.HTTPResponse) -> Iterator[Dict[str, Any]]:
        data: list = []
        kind = "message"
        while True:
            raw = resp.readline()
            if not raw:
                return  # the server ended the stream
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line:
                if data and kind == "event":
                    yield json.loads("\n".join(data))
                data, kind = [], "message"
                continue
            if line.startswith(":"):
                continue  # ": subscribed", ": keepalive"
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                data.append(value)
            elif field == "event":
                kind = value


class _Retry(Exception):
    """The server answered 503 to a subscription: try again after a delay."""
