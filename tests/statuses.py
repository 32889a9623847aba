"""Every status the test suite sees must be documented for its operation (issue 17 item 2).

:class:`StatusRecorder` is a logging handler on ``shanhai.access`` — the request middleware's one line per
request (``api/observability.py``), with the method, the route template and the status — installed for the
whole session by ``tests/conftest.py``. At the end of the session :func:`undocumented` compares what was seen
with the OpenAPI document of the app; a status that the document does not list for its operation fails the run.
Under pytest-xdist each worker hands its set to the controller (``workeroutput``), which checks the union.

Requests that matched no route (``<unmatched>``) and routes not in the document (the documentation pages, the
routes a test adds to its own app) are not operations and are not checked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from api.observability import UNMATCHED

Seen = tuple[str, str, int]


class StatusRecorder(logging.Handler):
    """Collect (method, route template, status) of every request the app answers."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.seen: set[Seen] = set()

    def emit(self, record: logging.LogRecord) -> None:
        """Record one access line."""
        method, route, status = (getattr(record, name, None) for name in ("method", "route", "status"))
        if isinstance(method, str) and isinstance(route, str) and isinstance(status, int):
            self.seen.add((method, route, status))


def undocumented(seen: Iterable[Seen], document: dict[str, Any]) -> list[str]:
    """Return ``"METHOD /route status"`` for every seen status its operation does not document, sorted."""
    missing = set()
    for method, route, status in seen:
        if route == UNMATCHED:
            continue
        operation = document["paths"].get(route, {}).get(method.lower())
        if operation is None:
            continue
        if str(status) not in operation.get("responses", {}):
            missing.add(f"{method} {route} {status}")
    return sorted(missing)
