"""Exceptions raised by the timetrail client."""

from __future__ import annotations

from typing import Any, Dict, Optional


class TimetrailError(Exception):
    """A request failed.

    ``status`` is the HTTP status (``None`` when the server could not be reached),
    ``code`` the API's ``error`` field (``"not_found"``, ``"invalid_argument"``, ...),
    ``message`` its explanation and ``body`` the whole error object.
    """

    def __init__(self, status: Optional[int], code: str, message: str,
                 body: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body: Dict[str, Any] = body or {}


class WrongExpectedRevision(TimetrailError):
    """409 ``wrong_expected_revision``: the stream is not at the revision the write expected.

    ``stream`` names the stream and ``actual_revision`` is where it is (``None`` when it has no
    events). Read it again and retry.
    """

    @property
    def stream(self) -> Optional[str]:
        return self.body.get("stream")

    @property
    def actual_revision(self) -> Optional[int]:
        return self.body.get("actual_revision")


class NotFound(TimetrailError):
    """404 ``not_found``: no such stream, event, consumer or endpoint."""


class ConnectionFailed(TimetrailError):
    """The server could not be reached or the connection broke (``status`` is ``None``)."""

    def __init__(self, message: str) -> None:
        super().__init__(None, "connection_failed", message)


def error_from_response(status: int, body: Any) -> TimetrailError:
    """Builds the exception for an error response (``body`` is its parsed JSON, if any)."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code, message = body["error"], str(body.get("message", ""))
    else:
        code, message = "http_error", f"HTTP {status}"
        body = body if isinstance(body, dict) else {}
    if code == "wrong_expected_revision":
        return WrongExpectedRevision(status, code, message, body)
    if status == 404:
        return NotFound(status, code, message, body)
    return TimetrailError(status, code, message, body)
