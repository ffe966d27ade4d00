"""A Python client for timetrail's HTTP API v1 (standard library only).

>>> from timetrail import Client, new_event
>>> tt = Client("http://127.0.0.1:7070")
>>> w = tt.append("friend-1", [new_event("$put", {"name": "Rachel"})],
...               expected_revision="no_stream")
>>> tt.entity("friend-1", min_position=w["position"])["state"]
{'name': 'Rachel'}

Who and why for the changes ``timetrail capture`` records: ``timetrail.context`` and the
integrations in ``timetrail.sqlalchemy``, ``timetrail.wsgi`` and ``timetrail.django``.
"""

from .context import (annotate, clear_context, context, current_context, is_write,
                      set_context)
from .client import (Client, ExpectedRevision, Time, format_time, new_event, parse_time,
                     stream_append)
from .errors import ConnectionFailed, NotFound, TimetrailError, WrongExpectedRevision
from .subscription import Subscription

__version__ = "0.1.0"

__all__ = ["Client", "Subscription", "new_event", "stream_append", "format_time", "parse_time",
           "Time", "ExpectedRevision", "TimetrailError", "WrongExpectedRevision", "NotFound",
           "ConnectionFailed", "context", "set_context", "clear_context", "current_context",
           "annotate", "is_write"]
