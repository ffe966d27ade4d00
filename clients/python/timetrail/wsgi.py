"""A WSGI middleware that runs each request inside a :func:`timetrail.context`, for any WSGI
framework (Flask: ``app.wsgi_app = ContextMiddleware(app.wsgi_app, context_from_environ)``).

The request's ``request_id`` is its ``X-Request-Id`` header, or a new UUID. The context is active
while the application runs, also while a streamed response body is produced, and cleared after.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Dict, Iterable, Iterator, Mapping, Optional

from .context import _current, set_context

Environ = Dict[str, Any]

# A client's header goes into every statement's text: a longer one is replaced, not copied.
MAX_REQUEST_ID = 200


def request_id_from(header: Optional[str]) -> str:
    """The client's request id when it sent a usable one, otherwise a new UUID."""
    if header and len(header) <= MAX_REQUEST_ID and header.isprintable():
        return header
    return str(uuid.uuid4())


class ContextMiddleware:
    """Wraps a WSGI application. ``context_from_environ(environ) -> dict`` (optional) gives the
    members, e.g. ``{"actor": environ.get("REMOTE_USER")}``; they are merged over
    ``{"request_id": ...}``."""

    def __init__(self, app: Callable[..., Iterable[bytes]],
                 context_from_environ: Optional[Callable[[Environ], Mapping[str, Any]]] = None
                 ) -> None:
        if not callable(app):
            raise TypeError("ContextMiddleware wraps a WSGI application (a callable)")
        if context_from_environ is not None and not callable(context_from_environ):
            raise TypeError("context_from_environ must be a callable environ -> dict")
        self.app = app
        self.context_from_environ = context_from_environ

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        members: Dict[str, Any] = {"request_id": request_id_from(environ.get("HTTP_X_REQUEST_ID"))}
        if self.context_from_environ is not None:
            members.update(self.context_from_environ(environ) or {})
        token = set_context(members)
        try:
            body = self.app(environ, start_response)
            # What the application itself set (e.g. an actor after login) also holds while
            # its body is produced.
            active = _current.get()
        finally:
            _current.reset(token)
        return _Body(body, active)


class _Body:
    """The application's response body, produced with the request's context active. The
    context is set around each step, not held between them: the server may iterate the body in
    another context, and must not leave the context set after the response."""

    def __init__(self, body: Iterable[bytes], active: Any) -> None:
        self._body = body
        self._active = active
        self._iterator: Optional[Iterator[bytes]] = None

    def __iter__(self) -> "_Body":
        return self

    def __next__(self) -> bytes:
        token = _current.set(self._active)
        try:
            if self._iterator is None:
                self._iterator = iter(self._body)
            return next(self._iterator)
        finally:
            _current.reset(token)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            token = _current.set(self._active)
            try:
                close()
            finally:
                _current.reset(token)
