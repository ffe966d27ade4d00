"""``timetrail.django.middleware.ContextMiddleware``: each request runs inside a
:func:`timetrail.context` of ``actor`` (the authenticated user's username) and ``request_id``
(the ``X-Request-Id`` header, or a new UUID). Put it after ``AuthenticationMiddleware``.

``settings.TIMETRAIL_CONTEXT`` (a callable ``request -> dict``, or its dotted path) replaces how
the actor is found; its members are merged over ``{"request_id": ...}``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator

from django.conf import settings
from django.utils.module_loading import import_string

from ..context import _current, set_context
from ..wsgi import request_id_from


def default_context(request: Any) -> Dict[str, Any]:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return {"actor": user.get_username()}
    return {}


def _context_function() -> Callable[[Any], Dict[str, Any]]:
    function = getattr(settings, "TIMETRAIL_CONTEXT", None)
    if function is None:
        return default_context
    if isinstance(function, str):
        function = import_string(function)
    if not callable(function):
        raise TypeError("settings.TIMETRAIL_CONTEXT must be a callable request -> dict "
                        "or its dotted path")
    return function


class ContextMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.context_for = _context_function()

    def __call__(self, request: Any) -> Any:
        request_id = request_id_from(request.headers.get("X-Request-Id"))
        members: Dict[str, Any] = {"request_id": request_id}
        members.update(self.context_for(request) or {})
        token = set_context(members)
        try:
            response = self.get_response(request)
            active = _current.get()
        finally:
            _current.reset(token)
        if getattr(response, "streaming", False):
            # A streamed body is produced after this returns: keep the context around each step.
            response.streaming_content = _with_context(response.streaming_content, active)
        return response


def _with_context(chunks: Any, active: Any) -> Iterator[Any]:
    iterator = iter(chunks)
    while True:
        token = _current.set(active)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        finally:
            _current.reset(token)
        yield chunk
